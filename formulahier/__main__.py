"""Run the command line: ``python -m formulahier``."""

import sys

from .cli import main

sys.exit(main())
