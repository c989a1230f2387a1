"""The feed options `sorte up` and `sorte commander` share: which market, which symbols."""

from __future__ import annotations

import typer

from sorte.config import Settings

FeedOpt = typer.Option(
    None, "--feed", help="replay (files or the demo market), ccxt (a crypto exchange) or b3 (brapi); default: config"
)
SymbolsOpt = typer.Option(
    None, "--symbols", help="Comma-separated symbols of a live feed, e.g. BTC/USDT,ETH/USDT; default: config"
)


def with_feed(settings: Settings, feed: str | None, symbols: str | None) -> Settings:
    """``settings`` with the feed and symbols given on the command line, validated."""
    from sorte.runtime.assembly import with_runtime

    updates: dict[str, object] = {}
    if feed is not None:
        updates["feed"] = feed.strip().lower()
    if symbols is not None:
        updates["symbols"] = [s.strip().upper() for s in symbols.split(",") if s.strip()]
    return with_runtime(settings, **updates)


def describe_feed(settings: Settings) -> str:
    """One line for the start-up message: what is traded, on what."""
    rs = settings.runtime
    mode = "live trading" if rs.mode == "live" and rs.live_trading else "paper trading"
    if rs.feed == "replay":
        return f"{mode} on the replay feed"
    where = settings.exchange.name if rs.feed == "ccxt" else "B3 (brapi)"
    what = ", ".join(rs.symbols) or "no symbols"
    if settings.market.pairs.enabled:
        from commander.pairs import first_symbols  # the saved selection, else runtime.symbols; refuses neither

        every = f"{settings.market.pairs.refresh_s:g} s"
        what = f"the selected pairs (now {', '.join(first_symbols(settings))}; refreshed every {every})"
    return f"{mode} on {where} {settings.exchange.timeframe} candles of {what}"
