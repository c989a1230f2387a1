"""Answers that need no model: status and PnL from the service layer, a strategy's settings
from the catalogue, what was learned from the lesson store. In the message's language."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sorte.agent import journal
from sorte.config import Settings
from sorte.interpret.catalogue import Catalogue
from sorte.interpret.text import Language

_T: dict[str, dict[Language, Any]] = {
    "status": {
        "en": "Trading: {health}{paused}; active deployment: {active}; open positions: {positions}. "
        "Agent runs: {runs} ({counts}); waiting for approval: {waiting}.",
        "pt": "Operação: {health}{paused}; deployment ativo: {active}; posições abertas: {positions}. "
        "Execuções do agente: {runs} ({counts}); aguardando aprovação: {waiting}.",
    },
    "paused": {"en": " (paused)", "pt": " (pausado)"},
    "health": {
        "en": {"trading": "running", "paused": "paused", "degraded": "degraded", "stopped": "stopped"},
        "pt": {"trading": "rodando", "paused": "pausada", "degraded": "degradada", "stopped": "parada"},
    },
    "pnl": {
        "en": "Equity {equity} ({ret}% on {initial}); realised PnL {pnl}, fees {fees}; "
        "{closed} closed trades, win rate {win}; max drawdown {dd}%. Open positions: {positions}.",
        "pt": "Patrimônio {equity} ({ret}% sobre {initial}); PnL realizado {pnl}, taxas "
        "{fees}; {closed} operações fechadas, taxa de acerto {win}; drawdown máximo {dd}%. "
        "Posições abertas: {positions}.",
    },
    "no_book": {
        "en": "No trades yet: nothing has traded (start it with `sorte up`).",
        "pt": "Nenhuma operação ainda: nada operou (comece com `sorte up`).",
    },
    "none": {"en": "none", "pt": "nenhuma"},
    "lessons": {"en": "What I learned{about}:\n{items}", "pt": "O que aprendi{about}:\n{items}"},
    "about": {"en": " about {strategy}", "pt": " sobre {strategy}"},
    "no_lessons": {
        "en": "No lessons yet{about}: they come from changes that were validated, approved or rejected.",
        "pt": "Nenhuma lição ainda{about}: elas vêm de mudanças validadas, aprovadas ou rejeitadas.",
    },
    "settings": {"en": "Current settings:\n{text}", "pt": "Configuração atual:\n{text}"},
}


def _t(key: str, lang: Language) -> str:
    return str(_T[key][lang])


def status(settings: Settings, lang: Language, current_run: str) -> str:
    from sorte.service import reading

    o = reading.overview(settings)
    views = [v for v in journal.list_views(settings.data_dir) if v.run_id != current_run]
    counts = ", ".join(f"{n} {k}" for k, n in Counter(v.outcome for v in views if v.outcome).most_common())
    waiting = [v.run_id for v in views if v.status == "awaiting_approval"]
    active = f"#{o.active.id} {o.active.commit[:10]} ({o.active.slot})" if o.active else "-"
    return _t("status", lang).format(
        health=_T["health"][lang][o.health],
        paused=_t("paused", lang) if o.paused else "",
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
        return _t("no_book", lang)
    positions = reading.positions(settings)
    held = ", ".join(f"{p.symbol} {p.side} {p.qty:g}@{p.entry_price:g}" for p in positions) or _t("none", lang)
    win = f"{profit.win_rate:.0%}" if profit.win_rate is not None else "-"
    return _t("pnl", lang).format(
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
    return _t("settings", lang).format(text=text)


def lessons(settings: Settings, strategy: str | None, lang: Language, limit: int = 5) -> str:
    from sorte.service import reading

    found = reading.lessons(settings, strategy=strategy, limit=limit)
    about = _t("about", lang).format(strategy=strategy) if strategy else ""
    if not found:
        return _t("no_lessons", lang).format(about=about)
    items = "\n".join(f"- {x.rule} ({x.outcome}, {x.times_seen}x)" for x in found)
    return _t("lessons", lang).format(about=about, items=items)
