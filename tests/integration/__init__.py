"""Integration tests: verl (imports, Hydra composition, start-up checks), torch models or the project's commands as
subprocesses; no full training run."""
