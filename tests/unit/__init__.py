"""Unit tests: pure Python, no verl process, no Hydra composition of verl configs."""
