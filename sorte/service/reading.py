"""Reading for the front-ends: the book, the deployments, the agent's runs, lessons, logs.

Nothing here writes. The book comes from the commander's shared ledger when a commander has
traded, else from `sorte run`'s paper ledger; the cascade figures come from the snapshot the
active slot writes after its steps (``<commander dir>/snapshot-<slot>.json``); the market feed
from the health the commander keeps (``<commander dir>/feed.json``), its ages advanced to now."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commander.alerts import read_after, read_alerts
from commander.history import DeploymentHistory
from commander.inbox import commander_running
from commander.lease import LEASE_FILE, SLOTS, Lease, LeaseState
from commander.protocol import SlotSnapshot
from commander.reconcile import read_reconciliation
from commander.source import ledger_path
from commander.status import HISTORY_FILE, commander_dir
from sorte import paths
from sorte.agent import runs as agent
from sorte.agent.views import RunView
from sorte.config import Settings
from sorte.errors import ConfigError, SorteError
from sorte.market import FeedHealth, read_health
from sorte.runtime.ccxt_feed import parse_timeframe
from sorte.runtime.control import read_control
from sorte.runtime.ledger import Ledger
from sorte.runtime.values import BUY
from sorte.service.views import (
    AccountView,
    AlertView,
    DeploymentView,
    EquityPoint,
    FeedView,
    Health,
    LessonView,
    Overview,
    PositionView,
    ProfitView,
    StageStats,
    StrategyParam,
    StrategyView,
    SymbolFeedView,
    TradeView,
    seconds_text,
)

SNAPSHOT_STALE_S = 120.0  # an older slot snapshot is not shown as current
FEED_STALE_INTERVALS = 3  # a feed snapshot older than this many bar intervals (and SNAPSHOT_STALE_S) is old


class NotFound(SorteError):
    """No such run, deployment or file."""


# -- the book -----------------------------------------------------------------------------
def book_path(settings: Settings) -> Path | None:
    """The ledger the front-ends show: the commander's, else `sorte run`'s; None before any."""
    for path in (ledger_path(commander_dir(settings.data_dir)), paths.paper_ledger(settings.data_dir)):
        if path.exists():
            return path
    return None


def _with_ledger(settings: Settings, read: Any, empty: Any) -> Any:
    path = book_path(settings)
    if path is None:
        return empty
    ledger = Ledger.read_only(path)
    try:
        return read(ledger)
    except sqlite3.OperationalError:  # created but not yet initialised by its writer
        return empty
    finally:
        ledger.close()


def positions(settings: Settings) -> list[PositionView]:
    snapshot = _snapshot(settings)
    return _positions(settings, snapshot.last_close if snapshot else {})


def _positions(settings: Settings, closes: dict[str, float]) -> list[PositionView]:
    out = []
    for p in _with_ledger(settings, lambda led: list(led.positions().values()), []):
        last = closes.get(p.symbol)
        out.append(
            PositionView(
                symbol=p.symbol,
                side="long" if p.side == BUY else "short",
                qty=abs(p.qty),
                entry_price=p.entry_price,
                last_price=last,
                unrealised_pnl=None if last is None else (last - p.entry_price) * p.qty,
                strategy=p.strategy,
                stop_price=p.stop_price,
                take_price=p.take_price,
                opened_at=p.entry_ts,
            )
        )
    return sorted(out, key=lambda p: p.symbol)


def trades(settings: Settings, limit: int = 20) -> list[TradeView]:
    """The newest fills first."""
    fills = _with_ledger(settings, lambda led: led.fills(), [])
    return [
        TradeView(
            client_order_id=f.client_order_id,
            symbol=f.symbol,
            side="BUY" if f.side == BUY else "SELL",
            qty=f.qty,
            price=f.price,
            fee=f.fee,
            purpose=f.purpose,
            strategy=f.strategy,
            realised_pnl=f.realized_pnl,
            at=f.ts,
        )
        for f in reversed(fills[-limit:] if limit > 0 else [])
    ]


def profit(settings: Settings) -> ProfitView | None:
    def read(led: Ledger) -> ProfitView | None:
        curve = led.equity_curve()
        if not curve:
            return None
        account, fills = led.account(), led.fills()
        closes = [f for f in fills if f.purpose != "open"]
        wins = sum(1 for f in closes if f.realized_pnl > 0)
        peak, drawdown = float("-inf"), 0.0
        for _, _, equity in curve:
            peak = max(peak, equity)
            drawdown = max(drawdown, 1 - equity / peak if peak > 0 else 0.0)
        initial = settings.broker.initial_cash
        equity = curve[-1][2]
        return ProfitView(
            initial_cash=initial,
            equity=equity,
            cash=account.get("cash", equity),
            return_pct=(equity / initial - 1) * 100,
            realised_pnl=account.get("realized_pnl", 0.0),
            fees=account.get("fees", 0.0),
            closed_trades=len(closes),
            wins=wins,
            win_rate=wins / len(closes) if closes else None,
            max_drawdown=drawdown,
            steps=len(curve),
        )

    return _with_ledger(settings, read, None)


def equity_curve(settings: Settings, points: int = 300) -> list[EquityPoint]:
    """The equity per step, thinned to at most ``points`` (the last step always kept)."""
    curve = _with_ledger(settings, lambda led: led.equity_curve(), [])
    if points > 0 and len(curve) > points:
        stride = -(-len(curve) // points)
        curve = curve[::stride] + ([curve[-1]] if (len(curve) - 1) % stride else [])
    return [EquityPoint(step=s, at=ts, equity=e) for s, ts, e in curve]


# -- the active slot's snapshot -----------------------------------------------------------
def _snapshot(settings: Settings) -> SlotSnapshot | None:
    return _snapshot_of(settings, _lease(settings).holder)


def _snapshot_of(settings: Settings, holder: str | None) -> SlotSnapshot | None:
    """The snapshot of the slot that holds the lease; None when none is current."""
    if holder is None:
        return None
    path = paths.slot_snapshot(commander_dir(settings.data_dir), holder)
    if not path.exists():
        return None
    try:
        snapshot = SlotSnapshot.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):  # half gone, or written by no slot we know
        return None
    return snapshot if time.time() - snapshot.at < SNAPSHOT_STALE_S else None


def slot_metrics(settings: Settings) -> str:
    """The active slot's Prometheus metrics (text exposition), '' when none is current."""
    snapshot = _snapshot(settings)
    return snapshot.metrics if snapshot else ""


def stage_stats(settings: Settings) -> list[StageStats]:
    return _stages_in(_snapshot(settings))


def _stages_in(snapshot: SlotSnapshot | None) -> list[StageStats]:
    out = []
    for figures in snapshot.stages if snapshot else []:  # the cascade's order
        p, d = figures.passes, figures.discards
        b = [*figures.latency_buckets, (float("inf"), figures.latency_count)]
        out.append(
            StageStats(
                stage=figures.stage,
                passes=p,
                discards=d,
                pass_rate=p / (p + d) if p + d else None,
                latency_p50_ms=_quantile_ms(b, 0.5),
                latency_p99_ms=_quantile_ms(b, 0.99),
            )
        )
    return out


def _quantile_ms(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Upper bound of the histogram bucket holding quantile ``q`` (Prometheus' convention, no interpolation)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    target = q * buckets[-1][1]
    for le, count in buckets:
        if count >= target:
            return None if le == float("inf") else le * 1000
    return None


def llm_cache_hit_rate(settings: Settings) -> float | None:
    snapshot = _snapshot(settings)
    return snapshot.llm_cache_hit_rate if snapshot else None


# -- the commander --------------------------------------------------------------------------
def _lease(settings: Settings) -> LeaseState:
    folder = commander_dir(settings.data_dir)
    if not (folder / LEASE_FILE).exists():
        return LeaseState(holder=None, epoch=0)
    with Lease(folder) as lease:
        return lease.current()


def _history(settings: Settings) -> DeploymentHistory | None:
    path = commander_dir(settings.data_dir) / HISTORY_FILE
    return DeploymentHistory(path) if path.exists() else None


def deployments(settings: Settings, limit: int = 20) -> list[DeploymentView]:
    history = _history(settings)
    if history is None:
        return []
    with history:
        listed = history.list(limit=limit)
        active = history.active()
        return [
            DeploymentView(deployment=d, can_roll_back_to=_can_target(d, active), events=history.events(d.id))
            for d in listed
        ]


def _can_target(d: Any, active: Any) -> bool:
    return active is not None and d.id != active.id and d.state in ("warm", "retired")


def deployment(settings: Settings, deployment_id: int) -> DeploymentView:
    history = _history(settings)
    if history is None:
        raise NotFound(f"no deployment {deployment_id}: nothing has been deployed yet")
    with history:
        try:
            d = history.get(deployment_id)
        except SorteError:
            raise NotFound(f"no deployment {deployment_id} (the deployments page lists them)") from None
        return DeploymentView(
            deployment=d, events=history.events(d.id), can_roll_back_to=_can_target(d, history.active())
        )


def paused(settings: Settings) -> bool:
    return bool(read_control(paths.control_file(settings.data_dir)).get("paused", False))


def alerts(settings: Settings, limit: int = 50) -> list[AlertView]:
    """The newest last."""
    return [_alert_view(a) for a in read_alerts(commander_dir(settings.data_dir), limit=limit)]


def alerts_after(settings: Settings, offset: int | None) -> tuple[list[AlertView], int]:
    """Alerts written after byte ``offset`` of the alert log and the offset past them, for a pusher
    that sends each once; ``None`` (its first start) gives none and the log's current end."""
    found, end = read_after(commander_dir(settings.data_dir), offset)
    return [_alert_view(a) for a in found], end


def _alert_view(a: dict[str, Any]) -> AlertView:
    fields = {k: v for k, v in a.items() if k not in ("at", "kind", "message")}
    return AlertView(
        at=float(a.get("at", 0)), kind=str(a.get("kind", "")), message=str(a.get("message", "")), fields=fields
    )


# -- the market feed --------------------------------------------------------------------------
def feed(settings: Settings, now: float | None = None) -> FeedView | None:
    """The commander's feed health (``<commander dir>/feed.json``) with every age advanced to now;
    None before a commander wrote one, or while it cannot be read."""
    folder = commander_dir(settings.data_dir)
    return _feed_view(folder, commander_running(folder), time.time() if now is None else now)


def _feed_view(folder: Path, running: bool, now: float) -> FeedView | None:
    path = paths.feed_health(folder)
    health = read_health(path)
    if health is None:
        return None
    at = health.at
    if at is None:  # written by a collector that did not stamp it: the file's time will do
        try:
            at = path.stat().st_mtime
        except OSError:
            return None
    since = max(now - at, 0.0)  # a snapshot "from the future" (clock stepped back) is simply new
    symbols = [
        SymbolFeedView(
            symbol=s.symbol,
            last_seq=s.last_seq,
            last_bar_ts=s.last_bar_ts,
            last_bar_age_s=None if s.last_bar_age_s is None else s.last_bar_age_s + since,
            lag_s=s.lag_s,
            stale=s.stale,
        )
        for s in health.symbols
    ]
    ages = [s.last_bar_age_s for s in symbols if s.last_bar_age_s is not None]
    oldest = max(ages) if ages else None
    current = running and since <= max(FEED_STALE_INTERVALS * _interval_s(health.timeframe), SNAPSHOT_STALE_S)
    return FeedView(
        source=health.source,
        timeframe=health.timeframe,
        mode=health.mode,
        symbols=symbols,
        oldest_bar_age_s=oldest,
        newest_seq=max((s.last_seq for s in symbols if s.last_seq is not None), default=None),
        lag_s=health.lag_s,
        clock_offset_s=health.clock_offset_s,
        reconnects=health.reconnects,
        poll_failures=health.poll_failures,
        backfilled_candles=health.backfilled_candles,
        streamed_candles=health.streamed_candles,
        gaps=health.gaps,
        stale_symbols=list(health.stale_symbols),
        entries_allowed=health.entries_allowed,
        market_open=health.market_open,
        opens_at=health.opens_at,
        at=at,
        snapshot_age_s=since,
        commander_running=running,
        current=current,
        state="old" if not current else "stale" if health.stale_symbols or not health.entries_allowed else "live",
        summary=_feed_summary(health, oldest, at, since, running, current),
    )


def _interval_s(timeframe: str) -> float:
    """Seconds of one bar of ``timeframe`` ('1m', '4h'); a minute when it cannot be told."""
    try:
        return parse_timeframe(timeframe)
    except ConfigError:
        return 60.0


def _last_bar(age: float | None, seq: int | None) -> str:
    if age is not None:
        return f"last bar {seconds_text(age)} ago"
    return "no bar yet" if seq is None else f"at bar {seq}"  # a replay: its bars have no age


def _opens(at: float | None) -> str:
    return "" if at is None else f" until {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(at))}"


def _feed_summary(
    health: FeedHealth, oldest: float | None, at: float, since: float, running: bool, current: bool
) -> str:
    mode = "" if health.mode == health.source else f" {health.mode}"
    parts = [
        f"{health.source} {health.timeframe}{mode}",
        f"{len(health.symbols)} symbol{'' if len(health.symbols) == 1 else 's'}",
        _last_bar(oldest, max((s.last_seq for s in health.symbols if s.last_seq is not None), default=None)),
        f"lag {seconds_text(health.lag_s)}",
        f"{health.reconnects} reconnect{'' if health.reconnects == 1 else 's'}",
        f"{health.backfilled_candles} backfilled, {health.streamed_candles} streamed candles",
    ]
    if health.stale_symbols:
        parts.append(f"stale: {', '.join(health.stale_symbols)}")
    if not health.entries_allowed:
        parts.append("new entries blocked")
    if not health.market_open:
        parts.append(f"market closed{_opens(health.opens_at)}")
    line = ", ".join(parts)
    if current:
        return line
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at))
    why = "commander not running" if not running else f"not updated for {seconds_text(since)}"
    return f"as of {stamp}, {why}: {line}"


def overview(settings: Settings) -> Overview:
    folder = commander_dir(settings.data_dir)
    running = commander_running(folder)
    lease = _lease(settings)
    history = _history(settings)
    active = None
    slots: dict[str, Any] = {slot: None for slot in SLOTS}
    if history is not None:
        with history:
            active = history.active()
            listed = history.list(limit=50)
            slots = {slot: next((d for d in listed if d.slot == slot), None) for slot in SLOTS}
    is_paused = paused(settings)
    snapshot = _snapshot_of(settings, lease.holder)  # read once for positions, stages and the cache figure
    account_view = account(settings)
    refused = account_view is not None and not account_view.ok
    degraded = running and (active is None or lease.holder is None or refused)
    state = "stopped" if not running else "degraded" if degraded else "paused" if is_paused else "trading"
    return Overview(
        commander_running=running,
        health=state,
        paused=is_paused,
        lease=lease,
        active=active,
        active_slot=lease.holder,
        slots=slots,
        profit=profit(settings),
        positions=_positions(settings, snapshot.last_close if snapshot else {}),
        stages=_stages_in(snapshot),
        llm_cache_hit_rate=snapshot.llm_cache_hit_rate if snapshot else None,
        runs_waiting=[v.run_id for v in agent.runs(settings) if v.status == "awaiting_approval"],
        alerts=alerts(settings, limit=10),
        feed=_feed_view(folder, running, time.time()),
        account=account_view,
    )


def account(settings: Settings, now: float | None = None) -> AccountView | None:
    """A live account's last reconciliation (``<data_dir>/account/reconciliation.json``); None
    when the account never traded live under the commander."""
    done = read_reconciliation(paths.account_dir(settings.data_dir))
    if done is None:
        return None
    age = max(0.0, (time.time() if now is None else now) - done.at)
    if done.ok:
        orders = f"{done.open_orders} open orders, as the ledger says"
        summary = f"reconciled at epoch {done.epoch} {seconds_text(age)} ago: {orders}"
    else:
        summary = f"TRADING REFUSED: the account differs from the ledger: {'; '.join(done.differences)}"
    return AccountView(
        ok=done.ok,
        epoch=done.epoch,
        differences=done.differences,
        balances=done.balances,
        open_orders=done.open_orders,
        at=done.at,
        age_s=age,
        summary=summary,
    )


def health(settings: Settings) -> Health:
    """Ready when the data directory is writable and, once something was deployed, a
    commander runs with a lease holder."""
    checks: dict[str, str] = {}
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        probe = settings.data_dir / ".ready-probe"
        probe.write_text("ok")
        probe.unlink()
        checks["data_dir"] = "ok"
    except OSError as exc:
        checks["data_dir"] = f"not writable: {exc}"
    folder = commander_dir(settings.data_dir)
    if commander_running(folder):
        holder = _lease(settings).holder
        checks["commander"] = "ok" if holder else "running, but no slot holds the order-writer lease"
    else:
        checks["commander"] = "not running"
    return Health(ready=all(v == "ok" for v in checks.values()), checks=checks)


# -- the agent, strategies, lessons, logs --------------------------------------------------
def runs(settings: Settings, limit: int = 20) -> list[RunView]:
    """Newest first."""
    views = sorted(agent.runs(settings), key=lambda v: v.updated_at, reverse=True)
    return views[:limit]


def run(settings: Settings, run_id: str) -> RunView:
    try:
        return agent.run(settings, run_id)
    except SorteError:
        raise NotFound(f"no run {run_id!r}: the list of runs shows them") from None


def run_timeline(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    """The nodes a run entered and left, with their times (the agent's audit of the run)."""
    from sorte.agent.journal import read_audit

    run(settings, run_id)  # NotFound first
    return read_audit(settings.data_dir, run_id)


def diff(settings: Settings, run_id: str) -> str:
    view = run(settings, run_id)
    if not view.diff:
        raise NotFound(f"run {run_id} has no diff (it is {view.status}, outcome {view.outcome or 'none yet'})")
    return view.diff


def strategies(settings: Settings) -> list[StrategyView]:
    from sorte.runtime.strategy import available_strategies, read_param_specs

    out = []
    folder = paths.strategies_dir(settings)
    for name in available_strategies(folder):
        specs = read_param_specs(folder / f"{name}.py")
        params = [StrategyParam(name=p, **spec.model_dump()) for p, spec in specs.items()]
        out.append(StrategyView(name=name, params=params))
    return out


def lessons(
    settings: Settings, query: str | None = None, strategy: str | None = None, limit: int = 10
) -> list[LessonView]:
    from knowledge import open_store

    if limit <= 0:
        raise SorteError(f"limit must be positive, got {limit}")
    if query is not None and not query.strip():
        raise SorteError("the query is empty: give a few words, or none to list the newest lessons")
    store = open_store(settings.knowledge, settings.data_dir)
    hits = (
        store.recall(query, strategy=strategy, k=limit)
        if query
        else [(x, None) for x in store.list(limit, strategy=strategy)]
    )
    return [
        LessonView(
            id=lesson.id,
            strategy=lesson.strategy,
            request=lesson.request,
            rule=lesson.rule,
            outcome=lesson.outcome,
            verdict=lesson.verdict,
            plan_summary=lesson.plan_summary,
            metric_deltas=lesson.metric_deltas,
            updated_at=lesson.updated_at.isoformat(timespec="seconds"),
            times_seen=lesson.times_seen,
            score=score,
        )
        for lesson, score in hits
    ]


def logs(settings: Settings, lines: int = 30) -> list[str]:
    """The last lines of the structured log `sorte up` writes (``<data_dir>/logs/sorte.jsonl``)."""
    path = paths.log_file(settings.data_dir)
    if not path.exists():
        return []
    with path.open(encoding="utf-8", errors="replace") as fh:
        return [line.rstrip("\n") for line in deque(fh, maxlen=max(lines, 0))]
