"""Service layer of the trading runtime: what the CLI (and later Telegram and the status
page) call. Builds runtimes and backtests from settings; front-ends stay thin."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import ValidationError

from sorte import paths
from sorte.config import RuntimeSettings, Settings
from sorte.errors import ConfigError, DataError, TradingRefused
from sorte.runtime import demo
from sorte.runtime.backtest import BacktestResult, run_backtest
from sorte.runtime.broker import PaperBroker
from sorte.runtime.cascade import Cascade, LLMStage, build_cascade, read_cascade, single_strategy_cascade
from sorte.runtime.cascade.llm_stages import LLMJudge
from sorte.runtime.clock import SimClock, WallClock
from sorte.runtime.control import RuntimeControl
from sorte.runtime.data import DEFAULT_MAX_GAP, load_bars, symbol_from_path
from sorte.runtime.engine import Listener, Runtime
from sorte.runtime.executor import Executor
from sorte.runtime.feed import Feed, ReplayFeed
from sorte.runtime.ledger import Ledger, open_owned
from sorte.runtime.metrics import RuntimeMetrics
from sorte.runtime.strategy_host import StrategyHost

if TYPE_CHECKING:
    from sorte.llm.client import LLM

LIVE_DEFAULT_INTERVAL_S = 5.0


def load_frames(files: list[Path], max_gap: float | None = DEFAULT_MAX_GAP) -> dict[str, pd.DataFrame]:
    """Load and validate every file before anything else happens (one error, nothing written)."""
    frames: dict[str, pd.DataFrame] = {}
    for path in files:
        sym = symbol_from_path(path)
        if sym in frames:
            raise DataError(f"two data files for symbol {sym}: name each file after its symbol")
        frames[sym] = load_bars(path, max_gap)
    return frames


def demo_frames(settings: Settings) -> dict[str, pd.DataFrame]:
    rt = settings.runtime
    return demo.generate(rt.demo_symbols, rt.demo_bars, rt.demo_seed)


def feed_fingerprint(frames: dict[str, pd.DataFrame]) -> str:
    h = hashlib.sha256()
    for sym in sorted(frames):
        h.update(sym.encode())
        h.update(pd.util.hash_pandas_object(frames[sym], index=True).values.tobytes())
    return h.hexdigest()[:16]


@dataclass
class PaperSession:
    runtime: Runtime
    ledger: Ledger
    ledger_path: Path
    total_steps: int | None


def build_paper_session(
    settings: Settings,
    files: list[Path] | None = None,
    ledger_path: Path | None = None,
    fresh: bool = False,
    listener: Listener | None = None,
    max_gap: float | None = DEFAULT_MAX_GAP,
    metrics: RuntimeMetrics | None = None,
) -> PaperSession:
    """A runtime in paper mode on a replay feed, resuming its ledger when that is unfinished."""
    if settings.runtime.feed == "b3":  # not a replay: trading the demo market under its name would mislead
        raise ConfigError(
            "the b3 feed (brapi) runs through the commander: `sorte up --feed b3 --symbols PETR4,VALE3` "
            "(or `sorte commander --feed b3`); `sorte run` replays files or the demo market, or polls a "
            "crypto exchange with --feed ccxt"
        )
    if settings.runtime.mode == "live":
        check_live_credentials(settings)
    metrics = metrics or RuntimeMetrics()
    files = files if files is not None else settings.runtime.data
    frames = load_frames(files, max_gap) if files else demo_frames(settings)
    cascade = configured_cascade(settings, metrics.registry)
    clock = WallClock() if settings.runtime.speed > 0 else SimClock()
    feed = ReplayFeed(frames, clock, settings.runtime.speed)
    ledger_path = ledger_path or paths.paper_ledger(settings.data_dir)
    try:
        ledger = _open_ledger(ledger_path, feed_fingerprint(frames), feed, fresh)
    except BaseException:
        close_cascade(cascade)
        raise
    interval = settings.runtime.batch_interval_s
    runtime = _assemble(
        settings, cascade, feed, clock, ledger, listener, metrics, 0.0 if interval is None else interval
    )
    return PaperSession(runtime, ledger, ledger_path, len(feed))


def _open_ledger(path: Path, fingerprint: str, feed: ReplayFeed, fresh: bool) -> Ledger:
    def finished(cursor: dict[str, int]) -> bool:  # a finished replay starts over
        return bool(cursor) and all(cursor.get(s, -1) >= len(feed.series[s]) - 1 for s in feed.symbols)

    return open_owned(path, fingerprint, fresh, "feed (other data or demo settings)", finished)


def _assemble(settings, cascade, feed: Feed, clock, ledger, listener, metrics, interval) -> Runtime:
    broker = PaperBroker(settings.broker)
    executor = Executor(broker, settings.risk, settings.broker)
    control_file = paths.control_file(settings.data_dir)
    control = RuntimeControl(batch_interval_s=interval, file=control_file)
    return Runtime(cascade, feed, broker, executor, clock, control, ledger, metrics, listener)


def with_runtime(settings: Settings, **updates: Any) -> Settings:
    """``settings`` with runtime fields replaced, validated like the configuration itself."""
    if not updates:
        return settings
    try:
        runtime = RuntimeSettings.model_validate({**settings.runtime.model_dump(), **updates})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"invalid {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return settings.model_copy(update={"runtime": runtime})


def check_live_credentials(settings: Settings) -> None:
    """Real trading needs the explicit flag and exchange credentials, both."""
    if not settings.runtime.live_trading:
        raise TradingRefused("real trading refused: set runtime.live_trading=true explicitly")
    ex = settings.exchange
    if not (ex.api_key and ex.api_key.get_secret_value() and ex.api_secret and ex.api_secret.get_secret_value()):
        raise TradingRefused(
            "real trading refused: no exchange credentials "
            "(set SORTE_EXCHANGE__API_KEY and SORTE_EXCHANGE__API_SECRET in the environment or .env)"
        )


def backtest(
    settings: Settings,
    strategy: str | None,
    files: list[Path],
    params: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
    max_gap: float | None = DEFAULT_MAX_GAP,
    min_confidence: float | None = None,
) -> tuple[Cascade, BacktestResult]:
    """Backtest one strategy (or the configured cascade when ``strategy`` is None)."""
    frames = load_frames(files, max_gap) if files else demo_frames(settings)
    if strategy is None:
        cascade = configured_cascade(settings)
    else:
        with _closing_on_error(strategy_host(settings)) as host:
            cascade = single_strategy_cascade(
                strategy,
                settings.strategies_dir,
                params,
                min_confidence=0.0 if min_confidence is None else min_confidence,
                host=host,
            )
            cascade.owns_host = True
    try:
        result = run_backtest(cascade, frames, settings.broker, settings.risk, progress)
    finally:
        close_cascade(cascade)
    check_replay(cascade)
    return cascade, result


def strategy_host(settings: Settings) -> StrategyHost:
    """A started worker for the configured strategies folder: strategy code runs there, confined,
    never in this process (which holds the ledger, the credentials and the settings)."""
    r = settings.runtime
    host = StrategyHost(
        settings.strategies_dir,
        backend=r.strategy_sandbox,
        call_timeout_s=r.strategy_timeout_s,
        memory_mb=r.strategy_memory_mb,
        connect=r.strategy_worker_socket,
    )
    return host.start()


@contextlib.contextmanager
def _closing_on_error(host: StrategyHost) -> Iterator[StrategyHost]:
    try:
        yield host
    except BaseException:
        host.close()
        raise


def configured_cascade(settings: Settings, registry: Any = None, host: StrategyHost | None = None) -> Cascade:
    """The cascade of ``strategies/cascade.py``, its LLM stages wired to the configured
    models (the LLM client is built only when some LLM stage is enabled), its strategy stages
    answered by a confined strategy worker: ``host``'s (whose owner stops it), else a new one
    that ``close_cascade`` stops with the LLM cache."""
    definition = read_cascade(settings.strategies_dir / "cascade.py")
    llm = None
    if any(s.kind == "llm" for s in definition.enabled_stages):
        from sorte.llm.build import build_llm

        llm = build_llm(settings, registry)
    if host is not None:
        return build_cascade(definition, settings.strategies_dir, llm, host)
    with _closing_on_error(strategy_host(settings)) as own:
        return build_cascade(definition, settings.strategies_dir, llm, own, owns_host=True)


def _llm_of(cascade: Cascade) -> LLM | None:
    judges = [s.judge for s in cascade.stages if isinstance(s, LLMStage) and isinstance(s.judge, LLMJudge)]
    return judges[0].llm if judges else None


def close_llm(cascade: Cascade) -> None:
    llm = _llm_of(cascade)
    if llm is not None:
        llm.cache.close()


def close_cascade(cascade: Cascade) -> None:
    """Close the LLM cache and stop the strategy worker."""
    try:
        close_llm(cascade)
    finally:
        cascade.close()


def check_replay(cascade: Cascade) -> None:
    """In replay mode, missing cached answers are one clear error, listing them."""
    llm = _llm_of(cascade)
    if llm is None or not llm.replay_misses:
        return
    from sorte.llm.client import replay_report

    raise ConfigError(replay_report(llm.replay_misses))


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``name=value`` pairs from the command line (values are checked by the strategy)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"parameter {pair!r} must look like name=value")
        out[name.strip()] = value.strip()
    return out


def trades_frame(result: BacktestResult) -> pd.DataFrame:
    return pd.DataFrame([t.as_dict() for t in result.trades])


def write_summary_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
