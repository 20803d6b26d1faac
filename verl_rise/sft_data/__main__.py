"""``python -m verl_rise.sft_data``: see :mod:`verl_rise.sft_data.cli`."""

import sys

from verl_rise.sft_data.cli import main

sys.exit(main())
