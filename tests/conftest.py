from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import structlog

from sorte.config import REPO_ROOT, BrokerSettings, RiskSettings, Settings
from sorte.runtime.data import validate_bars

STRATEGIES = REPO_ROOT / "strategies"


@pytest.fixture(autouse=True)
def _structlog_as_before():
    """A CLI test configures logging for its process (a level filter, say); the next test
    must not inherit it, or ``capture_logs`` sees nothing below that level."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def sample(name: str) -> pd.DataFrame:
    """backtesting.py's bundled real series (GOOG daily, EURUSD hourly), as Sorte frames."""
    import backtesting.test as bt

    raw = getattr(bt, name)
    return validate_bars(raw.reset_index().rename(columns={raw.index.name or "index": "time"}), name)


@pytest.fixture(scope="session")
def goog() -> pd.DataFrame:
    return sample("GOOG")


@pytest.fixture(scope="session")
def eurusd() -> pd.DataFrame:
    return sample("EURUSD")


@pytest.fixture()
def goog_csv(tmp_path: Path, goog: pd.DataFrame) -> Path:
    path = tmp_path / "goog.csv"
    goog.rename(columns=str.capitalize).to_csv(path, index_label="Date")
    return path


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray ./sorte.yaml or .env
    for key in list(__import__("os").environ):
        if key.startswith("SORTE_"):
            monkeypatch.delenv(key)
    return Settings(data_dir=tmp_path / "var")


@pytest.fixture()
def frictionless() -> tuple[BrokerSettings, RiskSettings]:
    """Broker and risk settings under which a strategy trades on every signal."""
    return (
        BrokerSettings(fee_bps=0, slippage_bps=0, allow_short=True),
        RiskSettings(
            position_fraction=1, max_position_fraction=1, max_loss_per_trade=1, max_drawdown=1, max_gross_exposure=2
        ),
    )
