"""``python -m connector.testing.sim``: the same as ``lsq-sim``."""

import sys

from connector.testing.sim.cli import main

sys.exit(main())
