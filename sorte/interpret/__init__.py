"""The request interpreter: one message read against the catalogue of what Sorte may change.

Tier 1 (``parser``) reads the closed world exactly, with no model; below its confidence
threshold tier 2 (``constrained``) asks a model in small steps whose answers can only name what
exists. Every front-end goes through ``interpret``."""

from __future__ import annotations

from typing import Any

from sorte.interpret.catalogue import Catalogue, build_catalogue
from sorte.interpret.parser import CONFIDENT, Interpreter
from sorte.interpret.reading import Change, Reading

__all__ = ["CONFIDENT", "Catalogue", "Change", "Interpreter", "Reading", "build_catalogue", "interpret"]


async def interpret(text: str, catalogue: Catalogue, llm: Any = None, *, weak_model: bool = True) -> Reading:
    """Tier 1, then tier 2 when tier 1 is not sure and a model client is given."""
    reading = Interpreter(catalogue).read(text)
    if reading.confidence >= CONFIDENT or llm is None:
        return reading
    from sorte.interpret.constrained import ModelReader

    return await ModelReader(llm, catalogue, weak=weak_model).read(text, reading)
