from __future__ import annotations

import pytest

from sorte.config import clamp_hold, load_settings
from sorte.errors import ConfigError, TradingRefused
from sorte.runtime.assembly import check_live_credentials


def test_defaults_are_paper_mode(settings):
    s = load_settings()
    assert s.runtime.mode == "paper"
    assert s.runtime.live_trading is False
    assert s.runtime.feed == "replay"


def test_env_overrides_nested_values(settings, monkeypatch):
    monkeypatch.setenv("SORTE_BROKER__FEE_BPS", "3.5")
    monkeypatch.setenv("SORTE_RISK__MAX_OPEN_POSITIONS", "4")
    s = load_settings()
    assert s.broker.fee_bps == 3.5
    assert s.risk.max_open_positions == 4


def test_yaml_file_then_env_precedence(settings, tmp_path, monkeypatch):
    cfg = tmp_path / "conf.yaml"
    cfg.write_text("broker:\n  fee_bps: 7\n  slippage_bps: 2\nrisk:\n  max_drawdown: 0.1\n")
    s = load_settings(cfg)
    assert (s.broker.fee_bps, s.broker.slippage_bps, s.risk.max_drawdown) == (7, 2, 0.1)
    monkeypatch.setenv("SORTE_BROKER__FEE_BPS", "1")
    assert load_settings(cfg).broker.fee_bps == 1  # environment beats the file


def test_dotenv_is_read(settings, tmp_path):
    (tmp_path / ".env").write_text("SORTE_BROKER__INITIAL_CASH=1234\n")
    assert load_settings().broker.initial_cash == 1234


def test_secrets_are_masked(settings, monkeypatch):
    monkeypatch.setenv("SORTE_EXCHANGE__API_KEY", "key-that-must-not-show")
    monkeypatch.setenv("SORTE_EXCHANGE__API_SECRET", "secret-that-must-not-show")
    s = load_settings()
    dumped = str(s.masked())
    assert "must-not-show" not in dumped
    assert s.masked()["exchange"]["api_key"] == "***"
    assert "must-not-show" not in repr(s)


@pytest.mark.parametrize(
    "content, needle",
    [
        ("broker:\n  fee_bps: -1\n", "broker.fee_bps"),
        ("risk: [1, 2]\n", "risk"),
        ("unknown_key: 1\n", "unknown_key"),
        ("broker: {slipage_bps: 11}\n", "broker.slipage_bps"),  # a typo is not silently dropped
        ("risk: {max_drawdwn: 0.1}\n", "risk.max_drawdwn"),
        ("runtime: {speeed: 2}\n", "runtime.speeed"),
        ("exchange: {api_kee: x}\n", "exchange.api_kee"),
        ("broker: {fee_bps: [\n", "not valid YAML"),
        ("- a\n- b\n", "mapping"),
    ],
)
def test_invalid_config_gives_one_clear_error(settings, tmp_path, content, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_settings(cfg)


def test_missing_config_file(settings, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_live_mode_needs_the_explicit_flag(settings, monkeypatch):
    monkeypatch.setenv("SORTE_RUNTIME__MODE", "live")
    with pytest.raises(ConfigError, match="live_trading"):
        load_settings()


def test_live_trading_refused_without_credentials(settings, monkeypatch):
    monkeypatch.setenv("SORTE_RUNTIME__MODE", "live")
    monkeypatch.setenv("SORTE_RUNTIME__LIVE_TRADING", "true")
    s = load_settings()
    with pytest.raises(TradingRefused, match="credentials"):
        check_live_credentials(s)
    monkeypatch.setenv("SORTE_EXCHANGE__API_KEY", "k")
    monkeypatch.setenv("SORTE_EXCHANGE__API_SECRET", "s")
    check_live_credentials(load_settings())  # both present: allowed


def test_live_trading_refused_without_flag(settings):
    with pytest.raises(TradingRefused, match="live_trading"):
        check_live_credentials(load_settings())


@pytest.mark.parametrize("given, expected", [(0, 5), (4.9, 5), (5, 5), (30, 30), (90, 90), (600, 90)])
def test_hold_time_is_clamped_to_5_90_seconds(given, expected):
    assert clamp_hold(given) == expected
