"""Typed errors of the LLM layer: callers can tell a timeout from a missing model.

``reason`` is the short word the logs and the ``sorte_llm_fallbacks_total`` metric use for
each kind of failure (``reason=timeout``, ``reason=model_missing``...)."""

from sorte.errors import SorteError


class LLMError(SorteError):
    """Base class of every LLM failure."""

    reason = "error"


class LLMUnavailable(LLMError):
    """The backend cannot be reached (server down, library missing, model file missing)."""

    reason = "unavailable"


class ModelMissing(LLMError):
    """The backend answered but does not have the model."""

    reason = "model_missing"


class LLMTimeout(LLMError):
    """No answer within the call's timeout."""

    reason = "timeout"


class InvalidOutput(LLMError):
    """The answer did not parse or validate against the requested schema."""

    reason = "invalid_output"


class ReplayMiss(LLMError):
    """Replay mode: the answer is not cached, and replay never calls a model."""

    reason = "not_cached"
