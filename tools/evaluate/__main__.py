"""python -m tools.evaluate"""

from tools.evaluate.evaluator import main

raise SystemExit(main())
