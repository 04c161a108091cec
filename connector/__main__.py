"""``python -m connector``: the same as the ``lsq-sink`` command."""

from connector.cli import main

raise SystemExit(main())
