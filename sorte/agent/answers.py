"""Answers that need no model: status and PnL from the service layer, a strategy's settings
from the catalogue, what was learned from the lesson store. In the message's language."""

from __future__ import annotations

from collections import Counter

from sorte.agent import journal
from sorte.agent.prompts import HEALTH, reply
from sorte.config import Settings
from sorte.interpret.catalogue import Catalogue
from sorte.interpret.text import Language


def status(settings: Settings, lang: Language, current_run: str) -> str:
    from sorte.service import reading

    o = reading.overview(settings)
    views = [v for v in journal.list_views(settings.data_dir) if v.run_id != current_run]
    counts = ", ".join(f"{n} {k}" for k, n in Counter(v.outcome for v in views if v.outcome).most_common())
    waiting = [v.run_id for v in views if v.status == "awaiting_approval"]
    active = f"#{o.active.id} {o.active.commit[:10]} ({o.active.slot})" if o.active else "-"
    return reply(
        "status",
        lang,
        health=HEALTH[lang][o.health],
        paused=reply("paused", lang) if o.paused else "",
        active=active,
        positions=len(o.positions),
        runs=len(views),
        counts=counts or "-",
        waiting=", ".join(waiting) or "-",
    )


def pnl(settings: Settings, lang: Language) -> str:
    from sorte.service import reading

    profit = reading.profit(settings)
    if profit is None:
        return reply("no_book", lang)
    positions = reading.positions(settings)
    held = ", ".join(f"{p.symbol} {p.side} {p.qty:g}@{p.entry_price:g}" for p in positions) or reply("none", lang)
    win = f"{profit.win_rate:.0%}" if profit.win_rate is not None else "-"
    return reply(
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
    text = format(value, spec)
    return text.translate(str.maketrans(",.", ".,")) if lang == "pt" else text


def explain(catalogue: Catalogue, strategy: str | None, lang: Language) -> str:
    """A strategy's settings as declared (with bounds), or every strategy's and the cascade's."""
    if strategy in catalogue.strategies:
        text = catalogue.describe(strategy)
    else:
        text = "\n".join([*(catalogue.describe(s) for s in catalogue.strategies), catalogue.describe_cascade()])
    return reply("settings", lang, text=text)


def lessons(settings: Settings, strategy: str | None, lang: Language, limit: int = 5) -> str:
    from sorte.service import reading

    found = reading.lessons(settings, strategy=strategy, limit=limit)
    about = reply("about", lang, strategy=strategy) if strategy else ""
    if not found:
        return reply("no_lessons", lang, about=about)
    items = "\n".join(f"- {x.rule} ({x.outcome}, {x.times_seen}x)" for x in found)
    return reply("lessons", lang, about=about, items=items)
