"""The strategy worker gives the same decisions as the code run in process, over a channel that
carries numbers only (issue 14, privilege separation)."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sorte.config import REPO_ROOT, BrokerSettings, RiskSettings
from sorte.runtime.backtest import run_backtest
from sorte.runtime.cascade import load_cascade, single_strategy_cascade
from sorte.runtime.data import to_ohlcv
from sorte.runtime.strategy import available_strategies, load_strategy
from sorte.runtime.strategy_host import StrategyHost
from sorte.runtime.strategy_wire import WireError, encode_reasons, read_frame, write_frame

STRATEGIES = REPO_ROOT / "strategies"


@pytest.fixture(scope="module")
def host():
    with StrategyHost(STRATEGIES) as h:
        yield h


@pytest.mark.parametrize("name", available_strategies(STRATEGIES))
def test_worker_signals_equal_in_process_signals(host: StrategyHost, goog: pd.DataFrame, name: str) -> None:
    bars = to_ohlcv(goog)
    local = load_strategy(name, STRATEGIES).signals(bars)
    remote = host.strategy(name).signals(bars)
    np.testing.assert_array_equal(remote[0], np.asarray(local[0], float))
    np.testing.assert_array_equal(remote[1], np.asarray(local[1], np.int8))
    assert remote[2].tolist() == [str(r) for r in np.asarray(local[2]).tolist()]


def test_parameters_are_validated_on_the_trusted_side(host: StrategyHost) -> None:
    from sorte.errors import StrategyError

    with pytest.raises(StrategyError, match="outside its bounds"):
        host.strategy("momentum", {"fast": 10**9})
    with pytest.raises(StrategyError, match="unknown strategy"):
        host.strategy("../momentum")


def test_backtest_through_the_worker_equals_the_in_process_one(host: StrategyHost, eurusd: pd.DataFrame) -> None:
    data = {"EURUSD": eurusd.iloc[:1500]}
    remote = run_backtest(load_cascade(STRATEGIES, host=host), data, BrokerSettings(), RiskSettings())
    local = run_backtest(load_cascade(STRATEGIES), data, BrokerSettings(), RiskSettings())
    assert remote.metrics == local.metrics
    assert [t.as_dict() for t in remote.trades] == [t.as_dict() for t in local.trades]


def test_prefetch_answers_evaluate_last_without_another_trip(host: StrategyHost, goog: pd.DataFrame) -> None:
    cascade = single_strategy_cascade("momentum", STRATEGIES, host=host)
    bars = to_ohlcv(goog)
    windows = [bars.window(i, cascade.window) for i in range(100, 110)]
    expected = [cascade.evaluate_last("GOOG", i, w) for i, w in enumerate(windows)]
    cascade.prefetch(windows)
    calls = []
    real = host.signals
    host.signals = lambda *a, **k: calls.append(a) or real(*a, **k)  # type: ignore[method-assign]
    try:
        got = [cascade.evaluate_last("GOOG", i, w) for i, w in enumerate(windows)]
    finally:
        del host.signals
    assert calls == []
    assert [d and (d.side, d.confidence, d.reason) for d in got] == [
        d and (d.side, d.confidence, d.reason) for d in expected
    ]


def test_without_namespaces_the_worker_says_what_it_lacks(monkeypatch: pytest.MonkeyPatch, goog) -> None:
    import sandbox.confined

    monkeypatch.setattr(sandbox.confined, "can_unshare_network", lambda: False)
    with StrategyHost(STRATEGIES) as h:
        assert h.warnings and "network access" in h.warnings[0]
        assert len(h.strategy("momentum").signals(to_ohlcv(goog))[0]) == len(goog)


def test_the_worker_ends_with_its_host() -> None:
    h = StrategyHost(STRATEGIES).start()
    proc = h._proc.proc
    h.close()
    assert proc.poll() is not None
    assert not h.alive


# --- the wire: what a hostile worker could send ----------------------------------------------


def _frame(header: dict, body: bytes = b"") -> io.BytesIO:
    head = json.dumps(header).encode()
    return io.BytesIO(struct.pack("!II", len(head), len(body)) + head + body)


def test_frames_round_trip() -> None:
    buf = io.BytesIO()
    write_frame(buf, {"ok": True}, [np.arange(3, dtype="<f8"), np.array([1, -1], dtype="|i1")])
    buf.seek(0)
    header, arrays = read_frame(buf)
    assert header["ok"] is True
    assert arrays[0].tolist() == [0.0, 1.0, 2.0] and arrays[1].tolist() == [1, -1]


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ({"arrays": [["|O", 1]]}, b"\0" * 8),  # object arrays (pickles) never travel
        ({"arrays": [["<f8", 4]]}, b"\0" * 8),  # fewer bytes than announced
        ({"arrays": [["<f8", 1]]}, b"\0" * 16),  # more bytes than announced
        ({"arrays": [["<f8", -1]]}, b""),
        ({"arrays": [["<f8", 1.5]]}, b"\0" * 8),
        ({"arrays": "<f8"}, b""),
        ({"no": "arrays"}, b""),
    ],
)
def test_malformed_frames_are_refused(header: dict, body: bytes) -> None:
    with pytest.raises(WireError):
        read_frame(_frame(header, body))


def test_oversized_and_non_object_frames_are_refused() -> None:
    with pytest.raises(WireError, match="too large"):
        read_frame(io.BytesIO(struct.pack("!II", 1 << 30, 0)))
    head = b"[1, 2]"
    with pytest.raises(WireError, match="JSON object"):
        read_frame(io.BytesIO(struct.pack("!II", len(head), 0) + head))
    with pytest.raises(EOFError):
        read_frame(io.BytesIO(b"\0\0"))


def test_reasons_travel_as_a_table_and_codes() -> None:
    table, codes = encode_reasons(np.array(["a", "b", "a", ""], dtype=object))
    assert table == ["a", "b", ""] and codes.tolist() == [0, 1, 0, 2]


def test_strategy_files_are_copied_not_linked(tmp_path: Path) -> None:
    from sorte.runtime.strategy_host import prepare_box

    box = prepare_box(STRATEGIES, tmp_path / "box")
    names = sorted(p.name for p in (box / "lib" / "strategies").iterdir())
    assert names == sorted(p.name for p in STRATEGIES.glob("*.py"))
    assert sorted(p.name for p in (box / "lib" / "sorte").rglob("*.py")) == sorted(
        ["__init__.py", "__init__.py", "indicators.py", "values.py", "strategy_wire.py", "strategy_worker.py"]
    )


def test_scratch_of_a_dead_process_is_swept_and_a_live_ones_kept(tmp_path, monkeypatch) -> None:
    import subprocess
    import sys
    import tempfile

    from sandbox.confined import scratch_dir, sweep_stale

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"sorte-strategies-{int(dead.stdout)}-abc"
    (stale / "box").mkdir(parents=True)
    (stale / "box" / "x.py").write_text("x")
    (stale / "box").chmod(0o555)
    other = tmp_path / "sorte-strategies-notapid-x"
    other.mkdir()
    live = scratch_dir("strategies")  # sweeps first; this process's own folder is kept
    assert not stale.exists() and live.is_dir() and other.is_dir()
    assert sweep_stale("strategies") == 0 and live.is_dir()
