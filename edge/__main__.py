"""python -m edge."""

import sys

from edge.service.cli import main

if __name__ == "__main__":
    sys.exit(main())
