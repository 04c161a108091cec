"""The CLI commands, one module each: ``run`` (the composition root), ``validate``, ``demo``."""
