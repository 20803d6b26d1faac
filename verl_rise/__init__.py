"""verl-rise: Metis-RISE (RL Incentivizes and SFT Enhances, arXiv 2506.13056) as a verl plugin.

Kept import-light on purpose: ``import verl`` loads :mod:`verl_rise.verl_ext.plugin` while verl itself is still
initialising, so nothing here may import verl or torch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
