"""Where things live: the repository Sorte edits, its strategies and its cascade, and the run
worktrees under the data dir. Every component asks here instead of deriving a path from the
settings itself (five places once derived the repository root, with two fallbacks, and the
agent looked for strategies in ``strategies/strategies``).

The layout is the one the editor and the guardian enforce: the repository root holds
``strategies/`` with the strategy modules and ``cascade.py``; a plan names files relative to
the root (``strategies/momentum.py``)."""

from __future__ import annotations

from pathlib import Path

from sorte.config import Settings
from sorte.errors import ConfigError

STRATEGIES = "strategies"
CASCADE_FILE = "cascade.py"


def repo_root(settings: Settings) -> Path:
    """The repository whose ``strategies/`` the agent edits: ``git.repo_root``, else the folder
    holding ``strategies_dir``."""
    if settings.git.repo_root is not None:
        return Path(settings.git.repo_root).resolve()
    folder = Path(settings.strategies_dir).resolve()
    if folder.name != STRATEGIES:
        raise ConfigError(
            f"strategies_dir {folder} is not a folder named {STRATEGIES!r} inside a repository: "
            f"set git.repo_root to the repository whose {STRATEGIES}/ Sorte edits"
        )
    return folder.parent


def strategies_dir(settings: Settings) -> Path:
    """The strategies Sorte edits and trades: ``<repo root>/strategies``."""
    if settings.git.repo_root is not None:
        return repo_root(settings) / STRATEGIES
    return Path(settings.strategies_dir).resolve()


def strategies_in(tree: Path) -> Path:
    """The strategies folder of a checkout (the base repository or a run's worktree)."""
    return Path(tree) / STRATEGIES


def cascade_file(tree: Path) -> Path:
    return strategies_in(tree) / CASCADE_FILE


def worktrees_dir(settings: Settings) -> Path:
    """Where the agent's run worktrees live (one per run, under the data dir)."""
    return (Path(settings.data_dir) / "worktrees").resolve()


# -- the data dir ----------------------------------------------------------------------------
CONTROL_FILE = "control.json"
LEDGER_FILE = "ledger.db"


def control_file(data_dir: Path | str) -> Path:
    """Pause and batch interval, re-read by the runtime between batches (``sorte control``)."""
    return Path(data_dir) / CONTROL_FILE


def paper_ledger(data_dir: Path | str) -> Path:
    """``sorte run``'s paper book."""
    return Path(data_dir) / "paper" / LEDGER_FILE


def live_feed_ledger(data_dir: Path | str, live: bool) -> Path:
    """The book of ``sorte run --feed ccxt``: real orders, or paper orders on live candles."""
    return Path(data_dir) / ("live" if live else "paper-live") / LEDGER_FILE


def commander_dir(data_dir: Path | str) -> Path:
    """The commander's lock, lease, history, inbox, shared ledger, snapshots and alerts."""
    return Path(data_dir) / "commander"


def account_dir(data_dir: Path | str) -> Path:
    """The order gateway's journal of a live account (orders sent, baseline): outside the
    commander folder, which slots may write, so no slot can touch the evidence."""
    return Path(data_dir) / "account"


def commander_ledger(folder: Path | str) -> Path:
    """The account's book under the commander: written only by the slot holding the lease."""
    return Path(folder) / LEDGER_FILE


def slot_snapshot(folder: Path | str, slot: str) -> Path:
    """What a slot last reported (positions, stage figures, closes), under the commander dir."""
    return Path(folder) / f"snapshot-{slot}.json"


def feed_health(folder: Path | str) -> Path:
    """The commander's feed as the front-ends show it (``sorte.market.FeedHealth``)."""
    return Path(folder) / "feed.json"


def agent_dir(data_dir: Path | str) -> Path:
    """The agent's checkpoints, audit log, run views and deploy requests."""
    return Path(data_dir) / "agent"


AUDIT_FILE = "audit.jsonl"


def agent_audit(data_dir: Path | str) -> Path:
    """One line per agent node entered, left or failed."""
    return agent_dir(data_dir) / AUDIT_FILE


def actions_audit(data_dir: Path | str) -> Path:
    """One line per front-end action (who, what, allowed or refused)."""
    return Path(data_dir) / AUDIT_FILE


def agent_checkpoints(data_dir: Path | str) -> Path:
    """LangGraph's SQLite checkpoints: a run resumes from its last finished node."""
    return agent_dir(data_dir) / "checkpoints.db"


def log_file(data_dir: Path | str) -> Path:
    """The structured log `sorte up` writes."""
    return Path(data_dir) / "logs" / "sorte.jsonl"


def market_dir(data_dir: Path | str) -> Path:
    """The market-data service's shared candle caches, one SQLite file per source."""
    return Path(data_dir) / "market"


def candle_cache(data_dir: Path | str, source: str) -> Path:
    """The candle cache of one source (an exchange id such as ``binance``)."""
    if not source or not source.replace("_", "").replace("-", "").isalnum():
        raise ConfigError(f"invalid market source {source!r}: use an exchange id such as 'binance'")
    return market_dir(data_dir) / f"{source}.db"


def pairs_file(data_dir: Path | str) -> Path:
    """The pair selector's last selection (``sorte.market.pairs``), as ``sorte pairs`` shows it."""
    return market_dir(data_dir) / "pairs.json"
