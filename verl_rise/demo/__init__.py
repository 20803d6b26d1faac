"""``verl-rise demo``: the README's main job, the whole Metis-RISE schedule on a CPU with a tiny model.

Demo-only fixtures live here, not in the schedule: :mod:`.cli` (the command, its config and problems),
:mod:`.base_model` (the base policy's warm-up: format and partial skill), :mod:`.expert` (the demo's expert
trajectory file) and :mod:`.chat` (the chat messages of an RL row, for the warm-up).
"""
