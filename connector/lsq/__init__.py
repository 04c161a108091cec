"""[pure] LeadSquared itself: its endpoints (the catalog) and what its answers mean."""
