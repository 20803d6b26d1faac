"""``python -m verl_rise.passrate``: see :mod:`verl_rise.passrate.cli`."""

import sys

from verl_rise.passrate.cli import main

if __name__ == "__main__":
    sys.exit(main())
