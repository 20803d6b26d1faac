"""``python -m verl_rise.passrate``: see :mod:`verl_rise.passrate.cli`."""

import sys

from verl_rise.passrate.cli import main

sys.exit(main())
