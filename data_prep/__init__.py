"""Converters that write verl-ready parquet."""
