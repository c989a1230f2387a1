"""A commander in its own process for the live chaos soak (``bench/chaos_live.py``).

    python bench/chaos_live_runner.py DATA_DIR REPO --exchange URL --ws URL [--mode chaos|reference]
        [--seed N] [--commits a,b,...] [--pauses JSON] [--ticks N] [--windows N]

The replay chaos test's runner (``tests/commander/chaos_runner.py``: A/A deployments one after
the other, slots killed on a seeded plan, every hand-over's paused step logged; the reference
mode pauses entries on the same bars) on a live account: ``runtime.mode=live`` on the fake
Binance at ``--exchange``/``--ws``, real orders through the commander's gateway. Windows are
``--windows`` steps (shadow, watch, analysis), and after every promotion that passed its watch
the runner asks for a rollback (``sorte rollback``'s request): two hand-overs per deployment.

It stops cleanly when ``DATA_DIR/stop`` exists (chaos) or the ledger holds ``--ticks`` steps
(reference). Events go to ``DATA_DIR/chaos-events.jsonl`` like the replay runner's, plus
``ready`` (the first step may come: the driver starts the exchange's clock then).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from fake_exchange import API_KEY, API_SECRET  # noqa: E402

from commander.engine import Commander  # noqa: E402
from sorte.config import Settings  # noqa: E402
from tests.commander.chaos_runner import Chaos, chaos_settings  # noqa: E402

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
STOP_FILE = "stop"


def live_chaos_settings(repo: Path, data_dir: Path, exchange: str, ws: str, windows: int) -> Settings:
    base = chaos_settings(repo, data_dir).model_dump()
    base["runtime"].update(feed="ccxt", symbols=SYMBOLS, mode="live", live_trading=True)
    base["exchange"].update(base_url=exchange, ws_url=ws, timeframe="1m", api_key=API_KEY, api_secret=API_SECRET)
    base["market"].update(
        prefetch_bars=200,
        stale_intervals=1000,  # a restart's catch-up is never stale: entries stay like the reference's
        poll_interval_s=0.2,
        reconnect_backoff_s=0.05,
        reconnect_backoff_max_s=0.2,
        request_timeout_s=5.0,
    )
    base["commander"].update(
        shadow_bars=windows, watch_bars=windows, warm_bars=windows * 4, reconcile_retry_s=1.0, batch_interval_s=0.0
    )
    base["commander"]["analysis"].update(min_bars=windows, latency_floor_ms=200.0)
    return Settings.model_validate(base)


class LiveChaos(Chaos):
    """The replay chaos plan, plus a rollback after every promotion's watch."""

    def __init__(self, commander: Commander, args: argparse.Namespace) -> None:
        super().__init__(commander, args)
        self.said_ready = False
        self.watching: tuple[int, int, int] | None = None

    async def before_between_steps(self) -> None:
        if not self.said_ready:
            self.said_ready = True
            self.emit("ready")
        await super().before_between_steps()

    async def after_between_steps(self) -> None:
        await super().after_between_steps()
        if self.args.mode == "reference":
            return
        c = self.c
        watched, self.watching = self.watching, c.watch
        if watched is None or c.watch is not None or c.pending is not None:
            return
        active = c.active_run()
        if active is None or active.deployment.id != watched[0] or c.warm_run() is None:
            return
        if self.plan(self._index(active.deployment.id)) == "active_after_watch":
            return  # that plan kills it right after its watch instead
        c.inbox.submit("rollback", to=None, reason="chaos soak: hand back")
        self.emit("rollback_request", deployment=active.deployment.id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/chaos_live_runner.py")
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("repo", type=Path)
    parser.add_argument("--exchange", required=True)
    parser.add_argument("--ws", required=True)
    parser.add_argument("--ticks", type=int, default=10**9)
    parser.add_argument("--mode", choices=["chaos", "reference"], default="chaos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commits", default="")
    parser.add_argument("--pauses", default="")
    parser.add_argument("--windows", type=int, default=5)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    settings = live_chaos_settings(args.repo, args.data_dir, args.exchange, args.ws, args.windows)
    commander = Commander(settings)
    chaos = commander.observer = LiveChaos(commander, args)
    stop = args.data_dir / STOP_FILE

    def enough(c: Commander) -> bool:
        return chaos.committed() >= args.ticks or stop.exists()

    report = asyncio.run(commander.run(until=enough))
    chaos.emit("stop", report=report.model_dump(mode="json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
