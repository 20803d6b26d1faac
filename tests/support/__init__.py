"""Helpers and data shared by the tests (paths to ../shared, fake verl harnesses)."""
