"""``python -m adaptlib.bench [options]``: every method of a profile (``make bench``);
``python -m adaptlib.bench throughput --sample N``: the sweep's throughput, one by one against together."""

import sys

if sys.argv[1:2] == ["throughput"]:
    from .throughput import main

    sys.exit(main(sys.argv[2:]))
from .methods import main

sys.exit(main())
