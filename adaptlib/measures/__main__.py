"""``python -m adaptlib.measures --profile P --results DIR``: the same as ``adaptlib measures``."""

import sys

from .cli import main

sys.exit(main())
