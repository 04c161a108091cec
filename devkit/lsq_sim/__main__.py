"""``python -m lsq_sim``: the same as ``lsq-sim``."""

import sys

from lsq_sim.cli import main

sys.exit(main())
