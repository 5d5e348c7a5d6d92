"""`python -m reglab` works like the reglab command."""

import sys

from reglab.cli import main

if __name__ == "__main__":
    sys.exit(main())
