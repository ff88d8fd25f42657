"""``python -m rladder_stream``: the ``rladder-stream`` command line."""

import sys

from .apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
