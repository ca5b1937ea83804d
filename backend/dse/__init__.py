"""ML-systems design-space explorer."""

__version__ = "0.1.0"
