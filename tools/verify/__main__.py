"""python -m tools.verify"""

from tools.verify.verifier import main

raise SystemExit(main())
