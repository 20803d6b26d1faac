"""Reward functions for Metis-RISE (filled in by the rewards work)."""
