"""``python -m dojob``: the ``dojob`` command (see :mod:`dojob.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
