"""Answers that need no model: status and PnL from the trading figures the service layer reads
(passed in as a :class:`~sorte.agent.context.Reader`), a strategy's settings from the catalogue,
what was learned from the lesson store. In the message's language."""

from __future__ import annotations

from collections import Counter

from knowledge import open_store
from sorte.agent import journal
from sorte.agent.context import Reader
from sorte.config import Settings
from sorte.errors import SorteError
from sorte.interpret.catalogue import Catalogue
from sorte.interpret.replies import Language, text


def _need(reader: Reader | None) -> Reader:
    if reader is None:
        raise SorteError("status and PnL answers need the trading figures: the service layer passes a reader in")
    return reader


def status(settings: Settings, reader: Reader | None, lang: Language, current_run: str) -> str:
    o = _need(reader).overview(settings)
    views = [v for v in journal.list_views(settings.data_dir) if v.run_id != current_run]
    counts = ", ".join(f"{n} {k}" for k, n in Counter(v.outcome for v in views if v.outcome).most_common())
    waiting = [v.run_id for v in views if v.status == "awaiting_approval"]
    active = f"#{o.active.id} {o.active.commit[:10]} ({o.active.slot})" if o.active else "-"
    return text(
        "status_answer",
        lang,
        health=text(f"health_{o.health}", lang),
        paused=text("status_paused", lang) if o.paused else "",
        active=active,
        positions=len(o.positions),
        runs=len(views),
        counts=counts or "-",
        waiting=", ".join(waiting) or "-",
    )


def pnl(settings: Settings, reader: Reader | None, lang: Language) -> str:
    reader = _need(reader)
    profit = reader.profit(settings)
    if profit is None:
        return text("no_book", lang)
    positions = reader.positions(settings)
    held = ", ".join(f"{p.symbol} {p.side} {p.qty:g}@{p.entry_price:g}" for p in positions) or text("none", lang)
    win = f"{profit.win_rate:.0%}" if profit.win_rate is not None else "-"
    return text(
        "pnl",
        lang,
        equity=_number(profit.equity, lang, ",.2f"),
        ret=_number(profit.return_pct, lang, "+.2f"),
        initial=_number(profit.initial_cash, lang, ",.0f"),
        pnl=_number(profit.realised_pnl, lang, "+,.2f"),
        fees=_number(profit.fees, lang, ",.2f"),
        closed=profit.closed_trades,
        win=win,
        dd=_number(profit.max_drawdown * 100, lang, ".1f"),
        positions=held,
    )


def _number(value: float, lang: Language, spec: str) -> str:
    """10,000.00 in English, 10.000,00 in Portuguese."""
    formatted = format(value, spec)
    return formatted.translate(str.maketrans(",.", ".,")) if lang == "pt" else formatted


def explain(catalogue: Catalogue, strategy: str | None, lang: Language) -> str:
    """A strategy's settings as declared (with bounds), or every strategy's and the cascade's."""
    if strategy in catalogue.strategies:
        described = catalogue.describe(strategy)
    else:
        described = "\n".join([*(catalogue.describe(s) for s in catalogue.strategies), catalogue.describe_cascade()])
    return text("settings", lang, text=described)


def lessons(settings: Settings, strategy: str | None, lang: Language, limit: int = 5) -> str:
    """The newest lessons (of ``strategy`` when one is named)."""
    found = open_store(settings.knowledge, settings.data_dir).list(limit, strategy=strategy)
    about = text("about", lang, strategy=strategy) if strategy else ""
    if not found:
        return text("no_lessons_yet", lang, about=about)
    items = "\n".join(f"- {x.rule} ({x.outcome}, {x.times_seen}x)" for x in found)
    return text("lessons", lang, about=about, items=items)
