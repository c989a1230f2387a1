"""Sorte: a self-modifying autonomous trading-agent framework."""

__version__ = "0.1.0"
