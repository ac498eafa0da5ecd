"""`python -m training.cli` runs the `rnagan` entry point."""

import sys

from training.cli.rnagan import main

if __name__ == "__main__":
    sys.exit(main())
