"""python -m tools.export"""

from tools.export.exporter import main

raise SystemExit(main())
