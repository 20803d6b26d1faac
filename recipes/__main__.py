"""``python -m verl_rise.recipes`` prints the installed recipes directory, the value for ``--config-path``.

Usage: ``python -m verl.trainer.main_ppo --config-path "$(python -m verl_rise.recipes)" --config-name rise_grpo_7b``.
Prints one absolute path and a newline on stdout; never fails.
"""

from . import RECIPES_DIR

print(RECIPES_DIR)
