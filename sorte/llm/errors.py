"""Typed errors of the LLM layer: callers can tell a timeout from a missing model."""

from sorte.errors import SorteError


class LLMError(SorteError):
    """Base class of every LLM failure."""


class LLMUnavailable(LLMError):
    """The backend cannot be reached (server down, library missing, model file missing)."""


class ModelMissing(LLMError):
    """The backend answered but does not have the model."""


class LLMTimeout(LLMError):
    """No answer within the call's timeout."""


class InvalidOutput(LLMError):
    """The answer did not parse or validate against the requested schema."""


class ReplayMiss(LLMError):
    """Replay mode: the answer is not cached, and replay never calls a model."""
