"""reglab: a laboratory for neural-network regularization."""

__version__ = "0.1.0"
