"""``python -m xconv``: see `xconv._cli`."""

import sys

from xconv._cli import main

if __name__ == "__main__":
    sys.exit(main())
