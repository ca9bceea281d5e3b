"""python -m tools.ablation"""

from tools.ablation.arms import main

raise SystemExit(main())
