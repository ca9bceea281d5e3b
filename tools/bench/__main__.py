"""python -m tools.bench"""

from tools.bench.runner import main

raise SystemExit(main())
