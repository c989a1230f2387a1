"""The strategy worker: the only process that executes strategy code, inside a sandbox.

Started by :class:`sorte.runtime.strategy_host.StrategyHost` with a scrubbed environment, no
network and no write access outside its private scratch. It loads the strategy modules of
``<root>/strategies`` and answers requests read from stdin with frames on stdout (see
``strategy_wire``): ``load`` (which stages, with parameter values the trusted side already
validated) and ``signals`` (score, side and reason per bar for windows of bars). It holds no
order, ledger, lease or credential: whatever a strategy does here, it can only answer wrongly,
and the trusted side checks every answer.

Only the standard library, numpy and copies of ``sorte.indicators``, ``sorte.runtime.values`` and
``sorte.runtime.strategy_wire`` are importable next to it: the worker's tree holds nothing else
of Sorte.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from typing import Any, BinaryIO

import numpy as np

from sorte.runtime.strategy_wire import encode_reasons, read_frame, write_frame
from sorte.runtime.values import Ohlcv, Params

MAX_ERROR = 2000


class _Stage:
    def __init__(self, strategy: str, params: dict[str, Any]) -> None:
        if not strategy.isidentifier() or strategy.startswith("_") or strategy in {"cascade", "prompts"}:
            raise ValueError(f"invalid strategy name {strategy!r}")
        self.module = importlib.import_module(f"strategies.{strategy}")
        for fn in ("lookback", "features", "decide"):
            if not callable(getattr(self.module, fn, None)):
                raise ValueError(f"strategy {strategy!r} does not define {fn}()")
        self.params = Params(params)

    def lookback(self) -> int:
        return int(self.module.lookback(self.params))

    def signals(self, bars: Ohlcv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        score, side, reason = self.module.decide(self.module.features(bars, self.params), self.params)
        return np.asarray(score, dtype="<f8"), np.asarray(side, dtype="|i1"), np.asarray(reason)


def _load(stages: dict[str, _Stage], header: dict[str, Any]) -> tuple[dict[str, Any], list[np.ndarray]]:
    lookbacks: dict[str, int] = {}
    for item in header.get("stages", []):
        key = str(item["key"])
        try:
            stages[key] = _Stage(str(item["strategy"]), dict(item.get("params") or {}))
            lookbacks[key] = stages[key].lookback()
        except Exception as exc:  # noqa: BLE001 - any failure of strategy code is reported, not fatal
            return _error(f"stage {key!r}: {type(exc).__name__}: {exc}"), []
    return {"ok": True, "lookbacks": lookbacks}, []


def _windows(header: dict[str, Any], arrays: list[np.ndarray]) -> list[Ohlcv]:
    intervals = header.get("intervals", [])
    if len(arrays) != 6 * len(intervals):
        raise ValueError("each window needs six columns")
    return [_window(arrays[6 * i : 6 * i + 6], float(iv)) for i, iv in enumerate(intervals)]


def _window(columns: list[np.ndarray], interval_s: float) -> Ohlcv:
    ts, open_, high, low, close, volume = (c.copy() for c in columns)
    return Ohlcv(ts, open_, high, low, close, volume, interval_s=interval_s)


def _signals(stages: dict[str, _Stage], header: dict[str, Any], arrays: list[np.ndarray]) -> tuple[dict, list]:
    keys = [str(k) for k in header.get("keys", [])]
    out: list[np.ndarray] = []
    tables: list[list[str]] = []
    for bars in _windows(header, arrays):
        for key in keys:
            try:
                score, side, reason = stages[key].signals(bars)
            except Exception as exc:  # noqa: BLE001 - reported to the trusted side as this stage's fault
                return _error(f"stage {key!r}: {type(exc).__name__}: {exc}"), []
            table, codes = encode_reasons(reason.reshape(-1))
            out += [score.reshape(-1), side.reshape(-1), codes]
            tables.append(table)
    return {"ok": True, "reasons": tables}, out


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message[:MAX_ERROR]}


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    stages: dict[str, _Stage] = {}
    while True:
        try:
            header, arrays = read_frame(inp)
        except EOFError:
            return
        op = header.get("op")
        if op == "load":
            reply, data = _load(stages, header)
        elif op == "signals":
            reply, data = _signals(stages, header, arrays)
        elif op == "ping":
            reply, data = {"ok": True}, []
        else:
            reply, data = _error(f"unknown op {op!r}"), []
        write_frame(out, reply, data)


def listen(path: str) -> None:
    """Serve one connection at a time on a Unix socket (a containerised slot's worker, which
    the slot reaches through a shared folder); each connection starts with no stage loaded."""
    import socket

    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o666)  # the slot runs as another uid; the folder holding the socket is private
    server.listen(1)
    while True:
        conn, _ = server.accept()
        with conn, conn.makefile("rb") as inp, conn.makefile("wb") as out:
            try:
                serve(inp, out)
            except Exception:  # noqa: BLE001 - the slot went away mid-frame: wait for the next one
                traceback.print_exc()


def main() -> None:
    # The protocol owns fd 1 (or the socket): anything a strategy prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        if len(sys.argv) > 3 and sys.argv[2] == "--listen":
            listen(sys.argv[3])
        else:
            serve(os.fdopen(0, "rb"), out)
    except Exception:  # noqa: BLE001 - a broken channel ends the worker; the host sees EOF
        traceback.print_exc()
        sys.exit(1)


if __name__ == "__main__":
    main()
