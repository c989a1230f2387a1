"""LLM backends behind one small interface (``Provider``)."""

from sorte.llm.providers.base import Completion, Provider

__all__ = ["Completion", "Provider"]
