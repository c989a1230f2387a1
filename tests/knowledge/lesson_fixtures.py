"""Shared test data for tests/knowledge: a varied lesson history and a fake Ollama embed endpoint."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from tests.fake_llm_servers import FakeOllama, _OllamaHandler

EMBED_DIM = 64


def bag_of_words(text: str) -> list[float]:
    """A deterministic toy embedding: hashed word counts (shared words -> similar vectors)."""
    vector = np.zeros(EMBED_DIM)
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.sha1(word.encode()).hexdigest(), 16) % EMBED_DIM] += 1.0
    return vector.tolist()


class _EmbedHandler(_OllamaHandler):
    fake: FakeOllamaEmbed

    def route(self, method, path, body):
        if (method, path) == ("POST", "/api/embed"):
            model = str(body.get("model") or "")
            if model not in self.fake.models:
                return self.send_json(404, {"error": f"model '{model}' not found, try pulling it first"})
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else list(texts or [])
            return self.send_json(
                200,
                {
                    "model": model,
                    "embeddings": [bag_of_words(t) for t in texts],
                    "total_duration": 1000,
                    "load_duration": 10,
                    "prompt_eval_count": sum(len(t.split()) for t in texts),
                },
            )
        return super().route(method, path, body)


class FakeOllamaEmbed(FakeOllama):
    """The test suite's fake Ollama server plus ``POST /api/embed`` (hashed bag-of-words vectors)."""

    default_models = ("all-minilm", "nomic-embed-text")

    @property
    def handler_class(self):
        return _EmbedHandler


# A small, varied history: Portuguese and English requests on several strategies.
HISTORY = [
    (
        "aumenta o stop loss do momentum para 3%",
        "momentum",
        "A wider stop loss on momentum (3%) cut whipsaw exits and raised the Sharpe ratio.",
        "pt",
    ),
    (
        "only buy when RSI is under 30 in mean_reversion",
        "mean_reversion",
        "Requiring RSI under 30 before buying halved the trades and raised the win rate.",
        "en",
    ),
    (
        "use a slower 50 day moving average for the trend filter",
        "momentum",
        "A 50-day trend filter lagged the market and lost return in fast rallies.",
        "en",
    ),
    (
        "reduz o tamanho da posição do breakout para 5% do capital",
        "breakout",
        "Smaller breakout positions reduced the maximum drawdown at a small cost in return.",
        "pt",
    ),
    (
        "add a volume confirmation to the breakout entry",
        "breakout",
        "Volume confirmation filtered false breakouts; fewer trades, better expectancy.",
        "en",
    ),
    (
        "make the sentiment stage threshold stricter, 0.8 instead of 0.75",
        "cascade",
        "A stricter sentiment threshold dropped too many good signals and was rejected.",
        "en",
    ),
]
