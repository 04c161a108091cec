"""[pure] What the loop moves and keeps: per-key lanes, planners that turn ready jobs into calls,
accounts and their rate gates (shared by a fleet), the dispatch of calls and settling of answers,
outcomes, offsets, the outcome-record codec and the reports; the ports the adapters implement."""
