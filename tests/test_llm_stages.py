from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pytest
import structlog

from sorte.config import (
    REPO_ROOT,
    BrokerSettings,
    LLMSettings,
    ProviderSettings,
    RiskSettings,
    RoleSettings,
    RoleTarget,
)
from sorte.errors import CascadeError
from sorte.llm.client import LLM
from sorte.llm.errors import LLMUnavailable
from sorte.llm.providers.fake import FakeProvider
from sorte.runtime.backtest import run_backtest
from sorte.runtime.cascade import build_cascade, parse_cascade
from sorte.runtime.cascade.prompts import read_prompts
from sorte.runtime.data import to_ohlcv

STRATEGIES = REPO_ROOT / "strategies"


def rsi_reader(model, messages):
    """A deterministic 'model': supports BUYs when RSI < 70 and SELLs when RSI > 30."""
    prompt = messages[-1]["content"]
    found = re.search(r"RSI(?:\(14\))? ([\d.]+)", prompt)
    rsi = float(found.group(1)) if found else 50.0
    side = re.search(r"proposed (BUY|SELL)|a (BUY|SELL)", prompt)
    wanted = next(g for g in side.groups() if g)
    score = (70 - rsi) / 40 if wanted == "BUY" else (rsi - 30) / 40
    answer = {"score": min(max(score, 0), 1), "side": wanted, "reason": f"rsi {rsi}"}
    if "how many seconds" in prompt:
        answer["hold_seconds"] = 240  # out of range on purpose: clamped to 90
    return json.dumps(answer)


def make_llm(script, tmp_path=None, replay=False, timeout_s=5.0, delay_s=0.0):
    settings = LLMSettings(
        providers={"fake": ProviderSettings(kind="fake", timeout_s=timeout_s)},
        roles={
            r: RoleSettings(chain=[RoleTarget(provider="fake", model="scripted")]) for r in ("standard", "sentiment")
        },
        replay=replay,
    )
    fake = FakeProvider("fake", settings.providers["fake"], script, delay_s)
    return LLM(settings, tmp_path / "cache.db" if tmp_path else None, {"fake": fake}), fake


def cascade(llm, final=False):
    stages = [
        {
            "name": "momentum",
            "kind": "strategy",
            "strategy": "momentum",
            "threshold": 0.0,
            "params": {"stop_loss": 0, "take_profit": 0},
        },
        {"name": "analysis", "kind": "llm", "role": "standard", "prompt": "technical", "threshold": 0.3},
    ]
    if final:
        stages.append({"name": "final", "kind": "llm", "role": "sentiment", "prompt": "final", "threshold": 0.0})
    return build_cascade(parse_cascade({"min_confidence": 0.0, "stages": stages}), STRATEGIES, llm)


def test_shipped_prompts_are_valid_templates():
    system, prompts = read_prompts(STRATEGIES / "prompts.py")
    assert system and {"sentiment", "technical", "risk", "validation", "final"} <= set(prompts)


def test_unknown_prompt_or_placeholder_is_refused(tmp_path):
    llm, _ = make_llm(rsi_reader)
    bad = parse_cascade(
        {
            "stages": [
                {"name": "momentum", "kind": "strategy", "strategy": "momentum", "threshold": 0},
                {"name": "x", "kind": "llm", "role": "standard", "prompt": "nope", "threshold": 0},
            ]
        }
    )
    with pytest.raises(CascadeError, match="no prompt 'nope'"):
        build_cascade(bad, STRATEGIES, llm)
    (tmp_path / "prompts.py").write_text('SYSTEM = "s"\nPROMPTS = {"technical": "RSI {rsi} {secret}"}\n')
    with pytest.raises(CascadeError, match="unknown placeholder"):
        read_prompts(tmp_path / "prompts.py")


def test_streaming_llm_stage_asks_the_model_and_reports_it(goog):
    llm, fake = make_llm(rsi_reader)
    c = cascade(llm)
    o = to_ohlcv(goog.head(300))
    batch = c.evaluate_batch(o, "GOOG")
    i = int(np.flatnonzero(batch.act)[0])
    d = asyncio.run(c.aevaluate_last("GOOG", i, o.window(i, c.window)))
    assert d is not None and "[fake:scripted]" in d.reason and "rsi" in d.reason
    assert fake.calls and "Technical analysis of GOOG" in fake.calls[-1][1][-1]["content"]
    assert c.stages[1].answered >= 1


def test_backtest_with_llm_stages_equals_the_live_path_and_replays_from_cache(goog, tmp_path):
    frames = {"GOOG": goog.head(400)}
    bs, rs = BrokerSettings(fee_bps=0, slippage_bps=0, allow_short=True), RiskSettings()
    llm, fake = make_llm(rsi_reader, tmp_path)
    result = run_backtest(cascade(llm, final=True), frames, bs, rs)
    calls = len(fake.calls)
    assert calls > 5 and result.decisions
    assert all(d.hold_s == 90 for d in result.decisions)  # the final stage's 240 s, clamped
    # the live runtime's path asks the same questions: every answer comes from the cache
    c = cascade(llm, final=True)
    o = to_ohlcv(frames["GOOG"])
    live = [asyncio.run(c.aevaluate_last("GOOG", d.seq, o.window(d.seq, c.window))) for d in result.decisions]
    assert [(x.side, x.confidence) for x in live] == [(d.side, d.confidence) for d in result.decisions]
    assert len(fake.calls) == calls
    asyncio.run(llm.close())
    # replay: a new process with only the cache gives the same trades and calls nothing
    replay, fake2 = make_llm(rsi_reader, tmp_path, replay=True)
    again = run_backtest(cascade(replay, final=True), frames, bs, rs)
    assert [(f.seq, f.side, f.price) for f in again.fills] == [(f.seq, f.side, f.price) for f in result.fills]
    assert fake2.calls == [] and replay.replay_misses == []


def test_replay_lists_what_is_missing_and_calls_no_model(goog, tmp_path):
    from sorte.errors import ConfigError
    from sorte.runtime.assembly import check_replay

    llm, fake = make_llm(rsi_reader, tmp_path, replay=True)
    c = cascade(llm)
    frame = goog.head(300)
    with structlog.testing.capture_logs() as logs:
        run_backtest(c, {"GOOG": frame}, BrokerSettings(), RiskSettings())
    assert fake.calls == []
    misses = llm.replay_misses
    assert len(misses) > 10 and {(m.stage, m.symbol, m.role) for m in misses} == {("analysis", "GOOG", "standard")}
    assert {m.bar_ts for m in misses} <= set(frame.index.as_unit("ns").asi8 / 1e9)  # the bars asked about
    assert not [e for e in logs if e["log_level"] == "warning"]  # no warning per missing answer
    with pytest.raises(ConfigError) as err:
        check_replay(c)
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"replay mode: {len(misses)} LLM answer(s) are not in the cache")
    assert len(lines) == 2 and "stage=analysis symbol=GOOG" in lines[1]
    assert f"{len(misses)} bar(s) missing" in lines[1] and lines[1].endswith(f"... and {len(misses) - 10} more")
    first = min(misses, key=lambda m: m.bar_ts)
    assert f"[{first.key[:8]}]" in lines[1] and re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[", lines[1])


@pytest.mark.parametrize(
    ("failure", "reason"), [("timeout", "timeout"), ("down", "unavailable"), ("garbage", "invalid_output")]
)
def test_a_failing_model_falls_back_to_technical_analysis_and_trading_goes_on(goog, failure, reason):
    script = {
        "timeout": [json.dumps({"score": 1, "side": "BUY", "reason": "late"})],
        "down": [LLMUnavailable("connection refused")],
        "garbage": ["I think you should buy!"],
    }[failure]
    llm, _ = make_llm(script, timeout_s=0.05, delay_s=1.0 if failure == "timeout" else 0.0)
    c = cascade(llm)
    o = to_ohlcv(goog.head(120))
    with structlog.testing.capture_logs() as logs:
        batch = c.evaluate_batch(o, "GOOG")
    assert c.stages[1].fallbacks > 0 and c.stages[1].answered == 0
    assert batch.act.any()  # decisions still come, on the technical score
    i = int(np.flatnonzero(batch.act)[0])
    assert batch.outputs[1].reason[i] == f"technical-analysis fallback ({reason})"
    stage_lines = [e for e in logs if e["event"].startswith("[LLM] stage=analysis fallback=technical-analysis")]
    assert stage_lines and all(e["event"].endswith(f" reason={reason}") for e in stage_lines)  # the cause
    backend_lines = [e["event"] for e in logs if e["event"].startswith("[LLM] fake ")]
    assert backend_lines and all(("timeout" in e) == (failure == "timeout") for e in backend_lines)


def test_without_an_llm_client_the_stage_is_the_technical_fallback(goog):
    c = cascade(None)
    batch = c.evaluate_batch(to_ohlcv(goog.head(200)), "GOOG")
    i = int(np.flatnonzero(batch.act)[0])
    assert "no LLM configured" in batch.outputs[1].reason[i]


def test_paper_runtime_with_an_llm_stage_trades_and_exports_llm_metrics(settings, tmp_path):
    import shutil

    from sorte.runtime import assembly

    strategies = tmp_path / "strategies"
    shutil.copytree(STRATEGIES, strategies)
    cascade_file = strategies / "cascade.py"
    cascade_file.write_text(
        cascade_file.read_text().replace(
            '"prompt": "technical", "threshold": 0.6, "weight": 1.0, "enabled": False',
            '"prompt": "technical", "threshold": 0.0, "weight": 1.0, "enabled": True',
        )
    )
    script = tmp_path / "answers.json"
    script.write_text(json.dumps([{"score": 0.95, "side": "HOLD", "reason": "looks fine"}]))
    s = settings.model_copy(
        update={
            "strategies_dir": strategies,
            "runtime": settings.runtime.model_copy(update={"demo_bars": 300}),
            "llm": LLMSettings(
                providers={"fake": ProviderSettings(kind="fake", model_path=script)},
                roles={"standard": RoleSettings(chain=[RoleTarget(provider="fake", model="m")])},
            ),
        }
    )
    sess = assembly.build_paper_session(s)
    summary = asyncio.run(sess.runtime.run())
    sess.ledger.close()
    assert summary.decisions > 0 and summary.stage_pass_rates["analysis"] > 0
    text = sess.runtime.metrics.render().decode()
    assert 'sorte_llm_calls_total{backend="fake",outcome="ok",role="standard"}' in text
    assert "sorte_llm_cache_hit_ratio" in text and "sorte_decisions_total" in text
    assert 'sorte_llm_stage_fallbacks{stage="analysis"} 0.0' in text


def test_ollama_gpu_report_from_ps():
    import ollama

    from sorte.llm.providers.ollama import _gpu

    empty = ollama.ProcessResponse(models=[])
    cpu = ollama.ProcessResponse(models=[{"model": "m", "size": 100, "size_vram": 0}])
    gpu = ollama.ProcessResponse(models=[{"model": "m", "size": 100, "size_vram": 100}])
    assert _gpu(empty).startswith("unknown") and _gpu(cpu) == "no (CPU)" and _gpu(gpu).startswith("yes (100%")
