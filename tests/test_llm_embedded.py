"""Real inference with the embedded SmolLM2-135M through llama-cpp-python. The model's
judgement is not asserted (it is tiny); the contract is: schema-valid objects back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from sorte.config import REPO_ROOT, LLMSettings, ProviderSettings
from sorte.llm.client import LLM
from sorte.llm.doctor import diagnose
from sorte.llm.embedded import embedded_model_path
from sorte.llm.errors import ModelMissing
from sorte.llm.providers.llamacpp import LlamaCppProvider
from sorte.runtime import demo
from sorte.runtime.cascade import build_cascade, parse_cascade
from sorte.runtime.cascade.llm_stages import FinalVerdict, StageVerdict
from sorte.runtime.cascade.prompts import market_summary, read_prompts, render
from sorte.runtime.data import to_ohlcv

pytestmark = [pytest.mark.llm, pytest.mark.timeout(600)]
STRATEGIES = REPO_ROOT / "strategies"


def test_the_embedded_model_ships_in_the_wheel():
    path = embedded_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90 * 2**20


@pytest.mark.parametrize("prompt", ["sentiment", "technical", "risk", "validation", "final"])
def test_every_stage_prompt_gets_a_schema_valid_answer(prompt):
    system, prompts = read_prompts(STRATEGIES / "prompts.py")
    bars = to_ohlcv(demo.generate(1, 120, seed=2)["ALPHA"])
    messages = render(system, prompts[prompt], market_summary(bars, "ALPHA", 1, "momentum: crossed (0.70)"))
    schema = FinalVerdict if prompt == "final" else StageVerdict
    llm = LLM(LLMSettings(), None)
    answer = asyncio.run(llm.ask("standard", messages, schema, stage=prompt))
    assert isinstance(answer.value, schema)
    assert 0 <= answer.value.score <= 1 and answer.value.side in ("BUY", "SELL", "HOLD")
    assert (answer.backend, answer.model) == ("llamacpp", "SmolLM2-135M-Instruct")
    assert answer.tokens_in and answer.tokens_out


def test_a_cascade_with_an_embedded_llm_stage_decides(goog):
    llm = LLM(LLMSettings(), None)
    definition = parse_cascade(
        {
            "min_confidence": 0.0,
            "stages": [
                {"name": "momentum", "kind": "strategy", "strategy": "momentum", "threshold": 0.0},
                {"name": "analysis", "kind": "llm", "role": "standard", "prompt": "technical", "threshold": 0.0},
            ],
        }
    )
    cascade = build_cascade(definition, STRATEGIES, llm)
    o = to_ohlcv(goog.head(150))
    signals = cascade.evaluate_batch(o, "GOOG")
    asked = cascade.stages[1]
    assert asked.answered + asked.fallbacks >= 1 and asked.answered >= 1
    i = int(np.flatnonzero(signals.act)[0])
    assert "[llamacpp:SmolLM2-135M-Instruct]" in signals.outputs[1].reason[i]


def test_doctor_reports_the_embedded_backend_and_a_one_token_call():
    settings = LLMSettings()
    llm = LLM(settings, None)
    report = asyncio.run(diagnose(settings, llm, ping=True, timeout_s=120))
    embedded = next(b for b in report.backends if b.name == "llamacpp")
    assert embedded.reachable and embedded.gpu.startswith("no")
    assert all(r.one_token_s is not None and r.one_token_s > 0 for r in report.roles)


def test_a_missing_model_file_is_a_clear_error(tmp_path: Path):
    provider = LlamaCppProvider("x", ProviderSettings(kind="llamacpp", model_path=tmp_path / "nope.gguf"))
    with pytest.raises(ModelMissing, match="does not exist"):
        asyncio.run(provider.complete("m", [{"role": "user", "content": "hi"}], None, 4))
