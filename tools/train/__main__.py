"""python -m tools.train"""

from tools.train.trainer import main

raise SystemExit(main())
