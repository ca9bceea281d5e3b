"""python -m tools.cli JOB ...: the same as the edge-explainer-tools command."""

from tools.cli import main

raise SystemExit(main())
