"""``python -m fmnist_core ...``: the command line (fmnist_core/cli/)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
