"""``python -m adaptlib.bench [options]``: every method of a profile (``make bench``)."""

import sys

from .methods import main

sys.exit(main())
