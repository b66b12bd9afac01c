"""raybt: multi-asset portfolio backtesting on Ray."""

__version__ = "0.1.0"
