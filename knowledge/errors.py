"""Knowledge's error type."""

from __future__ import annotations

from sorte.errors import SorteError


class KnowledgeError(SorteError):
    """The lesson store or its embedder cannot do what was asked (bad input, model or server missing)."""
