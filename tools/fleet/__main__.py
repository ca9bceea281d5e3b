"""python -m tools.fleet"""

from tools.fleet.commands import main

raise SystemExit(main())
