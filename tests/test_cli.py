from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from sorte.cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_config_prints_effective_values_with_secrets_masked(settings, monkeypatch):
    monkeypatch.setenv("SORTE_EXCHANGE__API_SECRET", "hunter2-hunter2")
    monkeypatch.setenv("SORTE_BROKER__FEE_BPS", "4")
    result = invoke("config")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["broker"]["fee_bps"] == 4
    assert data["exchange"]["api_secret"] == "***"
    assert "hunter2" not in result.stdout


def test_backtest_prints_metrics_and_writes_trades_plot_json(settings, goog_csv, tmp_path):
    out = tmp_path / "out"
    result = invoke(
        "backtest",
        "momentum",
        "--data",
        str(goog_csv),
        "-p",
        "stop_loss=0",
        "-p",
        "take_profit=0",
        "--trades",
        str(out / "trades.csv"),
        "--plot",
        str(out / "equity.png"),
        "--json",
        str(out / "m.json"),
    )
    assert result.exit_code == 0, result.stdout
    for label in ("return", "sharpe", "sortino", "max drawdown", "win rate", "trades", "exposure"):
        assert label in result.stdout
    trades = pd.read_csv(out / "trades.csv")
    metrics = json.loads((out / "m.json").read_text())
    assert len(trades.dropna(subset=["exit_seq"])) == metrics["trades"] > 10
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_of_the_cascade_on_the_demo_market(settings):
    result = invoke("backtest", "cascade")
    assert result.exit_code == 0
    assert "Backtest: cascade" in result.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["backtest", "nope"], "unknown strategy 'nope'"),
        (["backtest", "momentum", "-p", "fast=0"], "outside its bounds"),
        (["backtest", "momentum", "-p", "fast"], "name=value"),
        (["backtest", "momentum", "--data", "missing.csv"], "does not exist"),
        (["backtest", "cascade", "-p", "fast=3"], "single strategy"),
        (["run", "--data", "missing.csv"], "does not exist"),
        (["run", "--feed", "b3", "-s", "PETR4"], "runs through the commander: `sorte up --feed b3"),
        (["control", "--interval", "-3"], "between 0 and"),
        (["control", "--pause", "--resume"], "exclude each other"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(settings, args, needle):
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert needle in result.output.replace("\n", " ")
    assert "Traceback" not in result.output
    assert not (settings.data_dir / "paper").exists()


def test_run_prints_decisions_and_summary(settings):
    result = invoke("run", "--max-steps", "300")
    assert result.exit_code == 0
    assert "Summary" in result.stdout and "final equity" in result.stdout
    assert "conf" in result.stdout  # at least one decision line
    assert (settings.data_dir / "paper" / "ledger.db").exists()
    again = invoke("run", "--max-steps", "10")
    assert "resuming the unfinished run from step 300" in again.stdout


def test_control_writes_the_file_the_runtime_reads(settings):
    result = invoke("control", "--interval", "7", "--pause")
    assert result.exit_code == 0
    assert json.loads((settings.data_dir / "control.json").read_text()) == {"batch_interval_s": 7.0, "paused": True}


def test_strategies_lists_parameters(settings):
    result = invoke("strategies")
    assert result.exit_code == 0
    for word in ("momentum", "mean_reversion", "breakout", "stop_loss"):
        assert word in result.stdout


def test_invalid_cascade_definition_is_refused_before_anything_runs(settings, tmp_path, monkeypatch):
    import shutil

    from sorte.config import REPO_ROOT

    strategies = tmp_path / "strategies"
    shutil.copytree(REPO_ROOT / "strategies", strategies)
    cascade = strategies / "cascade.py"
    cascade.write_text(cascade.read_text().replace('"threshold": 0.5', '"threshold": 5'))
    monkeypatch.setenv("SORTE_STRATEGIES_DIR", str(strategies))
    result = runner.invoke(app, ["run"])
    assert result.exit_code == 2
    assert "invalid cascade in cascade.py: stages.0.threshold" in result.output.replace("\n", " ")
    assert not (settings.data_dir / "paper").exists()


@pytest.mark.timeout(60)
def test_run_on_the_ccxt_feed_through_a_local_exchange(settings, monkeypatch):
    import threading

    from fake_exchange import FakeBinance

    fake = FakeBinance(("BTC/USDT",)).start()
    done = threading.Event()

    def market_moves():  # a new one-minute candle closes every 0.2 s of wall time
        while not done.wait(0.2):
            fake.advance(1)

    mover = threading.Thread(target=market_moves, daemon=True)
    mover.start()
    try:
        monkeypatch.setenv("SORTE_EXCHANGE__BASE_URL", fake.url)
        result = runner.invoke(
            app, ["run", "--feed", "ccxt", "-s", "BTC/USDT", "--interval", "0.05", "--max-steps", "3"]
        )
    finally:
        done.set()
        mover.join()
        fake.stop()
    assert result.exit_code == 0, result.output
    assert "ccxt feed" in result.output and "BTC/USDT" in result.output
    assert "steps" in result.output
    assert (settings.data_dir / "paper-live" / "ledger.db").exists()
    assert any("klines" in path for _, path, _ in fake.requests)


def test_ccxt_feed_with_files_is_refused(settings, goog_csv):
    result = runner.invoke(app, ["run", "--feed", "ccxt", "-s", "BTC/USDT", "--data", str(goog_csv)])
    assert result.exit_code == 2 and "does not combine" in result.output


def test_backtest_replay_of_an_llm_cascade(settings, tmp_path, monkeypatch):
    import shutil

    from sorte.config import REPO_ROOT

    strategies = tmp_path / "strategies"
    shutil.copytree(REPO_ROOT / "strategies", strategies)
    cascade = strategies / "cascade.py"
    text = cascade.read_text().replace(
        '"prompt": "technical", "threshold": 0.6, "weight": 1.0, "enabled": False',
        '"prompt": "technical", "threshold": 0.6, "weight": 1.0, "enabled": True',
    )
    assert text != cascade.read_text()
    cascade.write_text(text)
    script = tmp_path / "answers.json"
    script.write_text(json.dumps([{"score": 0.9, "side": "BUY", "reason": "scripted"}]))
    monkeypatch.setenv("SORTE_STRATEGIES_DIR", str(strategies))
    monkeypatch.setenv("SORTE_LLM__PROVIDERS", json.dumps({"fake": {"kind": "fake", "model_path": str(script)}}))
    monkeypatch.setenv("SORTE_LLM__ROLES", json.dumps({"standard": {"chain": [{"provider": "fake", "model": "m"}]}}))
    missing = runner.invoke(app, ["backtest", "cascade", "--replay"])
    assert missing.exit_code == 2
    assert "not in the cache" in missing.output and "stage=analysis" in missing.output
    recorded = invoke("backtest", "cascade", "--json", str(tmp_path / "a.json"))
    assert recorded.exit_code == 0, recorded.output
    replayed = invoke("backtest", "cascade", "--replay", "--json", str(tmp_path / "b.json"))
    assert replayed.exit_code == 0, replayed.output
    a, b = json.loads((tmp_path / "a.json").read_text()), json.loads((tmp_path / "b.json").read_text())
    assert a == b and a["decisions"] > 0
    assert (settings.data_dir / "llm" / "cache.db").exists()
