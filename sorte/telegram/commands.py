"""The slash commands: each reads or acts through the service layer and formats the answer.

Role checks for actions live in the service layer (it audits refusals); the handlers only parse
arguments, call, and render. Every handler is wrapped by :func:`sorte.telegram.access.guarded`.
"""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from telegram import Update
from telegram.ext import ContextTypes

from sorte import service
from sorte.config import Settings
from sorte.service import audit
from sorte.telegram.access import MAX_TEXT, BadArgument, BotContext, Caller, clip, refuse_viewer, send
from sorte.telegram.approval import LONG_DIFF, decide, outcome_text
from sorte.telegram.texts import Html, esc, t

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_LIST = 50
FEED_SYMBOLS = 8  # symbols /status names; the count says how many there are


# -- arguments ----------------------------------------------------------------------------------
MAX_ID = 2**62  # larger ids exist nowhere (SQLite stops at 2**63) and only make int() slow


def positive_int(value: str, what: str, lang: str) -> int:
    # ASCII digits only: str.isdigit() takes "²" (int() then fails) and "١٢" (another script's 12)
    if not re.fullmatch(r"[0-9]{1,19}", value) or not 0 < int(value) <= MAX_ID:
        raise BadArgument(t(lang, "bad_number", what=what, value=clip(value, 40)))
    return int(value)


def count_arg(args: list[str], default: int, lang: str) -> int:
    return min(positive_int(args[0], "n", lang), MAX_LIST) if args else default


def run_id_arg(args: list[str], lang: str, usage: str) -> str:
    if not args:
        raise BadArgument(t(lang, "usage", usage=usage))
    if not RUN_ID.match(args[0]):
        raise BadArgument(t(lang, "bad_run_id", value=clip(args[0], 40)))
    return args[0]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")


def _pre(lines: list[str]) -> str:
    """Lines in a code block, the oldest dropped to fit one message."""
    body = "\n".join(lines)
    while len(esc(body)) > MAX_TEXT - 200 and len(lines) > 1:
        lines = lines[1:]
        body = "\n".join(lines)
    return f"<pre>{esc(clip(body, MAX_TEXT - 200))}</pre>"


async def reply(update: Update, caller: Caller, text: str, **kwargs: object) -> None:
    await send(update.get_bot(), caller.chat_id, text, **kwargs)


# -- general --------------------------------------------------------------------------------------
async def start(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    role = t(caller.lang, "role_operator" if caller.operator else "role_viewer")
    await reply(update, caller, t(caller.lang, "start", role=role))


async def help_(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    text = t(caller.lang, "help_read")
    if caller.operator:
        text += "\n\n" + t(caller.lang, "help_operate")
    await reply(update, caller, text)


# -- reading --------------------------------------------------------------------------------------
async def status(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    lang, o = caller.lang, service.overview(ctx.settings)
    active = "-"
    if o.active is not None:
        active = f"#{o.active.id} {o.active.commit[:10]} ({o.active.slot}, {o.active.state})"
    p = o.profit
    profit = (
        t(lang, "profit_line", equity=p.equity, ret=p.return_pct, realised=p.realised_pnl, fees=p.fees)
        if p is not None
        else t(lang, "no_profit")
    )
    await reply(
        update,
        caller,
        t(
            lang,
            "status",
            health=o.health,
            paused=t(lang, "entries_paused") if o.paused else "",
            commander=t(lang, "running" if o.commander_running else "not_running"),
            active=active,
            slot=o.active_slot or "-",
            profit=profit,
            positions=len(o.positions),
            waiting=", ".join(o.runs_waiting) or "-",
            feed=_feed_text(o.feed, lang),
            account=_account_text(o.account, lang),
        ),
    )


def _account_text(a: service.AccountView | None, lang: str) -> Html:
    """A live account's line of /status; none on paper."""
    if a is None:
        return Html("")
    if a.ok:
        return Html(t(lang, "account_ok", epoch=a.epoch, age=service.seconds_text(a.age_s), orders=a.open_orders))
    text = t(lang, "account_refused", differences="; ".join(a.differences))
    return Html(text + (t(lang, "account_accept_hint") if a.balances else ""))


def _last_bar(age: float | None, seq: int | None, lang: str) -> str:
    if age is not None:
        return t(lang, "feed_last_bar", age=service.seconds_text(age))
    return t(lang, "feed_no_bar") if seq is None else t(lang, "feed_at_bar", seq=seq)  # a replay has no ages


def _feed_text(f: service.FeedView | None, lang: str) -> Html:
    """The feed's lines of /status; none before a commander wrote its health."""
    if f is None:
        return Html("")
    age = f.oldest_bar_age_s
    text = t(
        lang,
        "feed_line",
        what=f"{f.source} {f.timeframe}" + ("" if f.mode == f.source else f" {f.mode}"),
        count=len(f.symbols),
        symbols=" ".join(s.symbol for s in f.symbols[:FEED_SYMBOLS]) + (" …" if len(f.symbols) > FEED_SYMBOLS else ""),
        last_bar=_last_bar(age, f.newest_seq, lang),
        lag=service.seconds_text(f.lag_s),
        reconnects=f.reconnects,
        backfilled=f.backfilled_candles,
        streamed=f.streamed_candles,
        offset=f.clock_offset_s,
    )
    if f.stale_symbols or not f.entries_allowed:
        text += t(lang, "feed_stale", symbols=", ".join(f.stale_symbols) or "-")
    if not f.market_open:
        opens = "" if f.opens_at is None else t(lang, "feed_opens", when=_when(f.opens_at))
        text += t(lang, "feed_closed", opens=opens)
    if not f.current:
        key = "feed_old_silent" if f.commander_running else "feed_old_stopped"
        text += t(lang, key, when=_when(f.at), age=service.seconds_text(f.snapshot_age_s))
    return Html(text)


async def positions(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    items = service.positions(ctx.settings)
    if not items:
        return await reply(update, caller, t(caller.lang, "no_positions"))
    lines = []
    for p in items:
        pnl = "" if p.unrealised_pnl is None else f" pnl {p.unrealised_pnl:+.2f}"
        last = "" if p.last_price is None else f" last {p.last_price:g}"
        lines.append(f"{p.symbol} {p.side} {p.qty:g} @ {p.entry_price:g}{last}{pnl} [{p.strategy}]")
    await reply(update, caller, t(caller.lang, "positions_title") + "\n" + _pre(lines))


async def trades(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    n = count_arg(context.args or [], 10, caller.lang)
    items = service.trades(ctx.settings, limit=n)
    if not items:
        return await reply(update, caller, t(caller.lang, "no_trades"))
    lines = [
        f"{_when(f.at)} {f.side} {f.qty:g} {f.symbol} @ {f.price:g} {f.purpose}"
        + (f" pnl {f.realised_pnl:+.2f}" if f.purpose != "open" else "")
        for f in items
    ]
    await reply(update, caller, t(caller.lang, "trades_title") + "\n" + _pre(lines))


async def profit(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    p = service.profit(ctx.settings)
    if p is None:
        return await reply(update, caller, t(caller.lang, "no_profit"))
    win_rate = "-" if p.win_rate is None else f"{p.win_rate * 100:.0f}%"
    text = t(
        caller.lang,
        "profit",
        initial=p.initial_cash,
        equity=p.equity,
        ret=p.return_pct,
        realised=p.realised_pnl,
        fees=p.fees,
        closed=p.closed_trades,
        wins=p.wins,
        win_rate=win_rate,
        dd=p.max_drawdown * 100,
        steps=p.steps,
    )
    await reply(update, caller, text)


async def balance(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    p = service.profit(ctx.settings)
    if p is None:
        return await reply(update, caller, t(caller.lang, "no_profit"))
    await reply(update, caller, t(caller.lang, "balance", equity=p.equity, cash=p.cash, initial=p.initial_cash))


async def strategies(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    lines = []
    for s in service.strategies(ctx.settings):
        params = ", ".join(f"{p.name}={p.default}" for p in s.params)
        lines.append(f"{s.name}: {params}" if params else s.name)
    if not lines:
        return await reply(update, caller, t(caller.lang, "none_yet"))
    await reply(update, caller, t(caller.lang, "strategies_title") + "\n" + _pre(lines))


async def runs(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    n = count_arg(context.args or [], 10, caller.lang)
    items = service.runs(ctx.settings, limit=n)
    if not items:
        return await reply(update, caller, t(caller.lang, "no_runs"))
    lines = [f"{v.run_id} {v.status}{'/' + v.outcome if v.outcome else ''} {clip(v.request, 60)}" for v in items]
    await reply(update, caller, t(caller.lang, "runs_title") + "\n" + _pre(lines))


async def run(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    run_id = run_id_arg(context.args or [], caller.lang, "/run ID")
    v = service.run(ctx.settings, run_id)
    extra = []
    if v.plan_summary:
        extra.append(f"{t(caller.lang, 'plan')}: {esc(v.plan_summary)}")
    if v.reply:
        extra.append(esc(clip(v.reply, 1500)))
    if v.verdict_text:
        extra.append(f"<pre>{esc(clip(v.verdict_text, 1200))}</pre>")
    if v.merged_sha:
        extra.append(f"merged {esc(v.merged_sha[:10])}")
    if v.pr_url:
        extra.append(esc(v.pr_url))
    text = t(
        caller.lang,
        "run",
        run_id=v.run_id,
        status=v.status,
        outcome=f" ({v.outcome})" if v.outcome else "",
        request=clip(v.request, 500),
        sender=v.sender or "-",
        extra="",
    )
    await reply(update, caller, text + "\n".join(extra))  # extra is HTML already, its values escaped above


async def diff(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    run_id = run_id_arg(context.args or [], caller.lang, "/diff ID")
    text = service.diff(ctx.settings, run_id)
    if len(text) > LONG_DIFF:  # a file keeps a long change whole and readable
        await update.get_bot().send_document(
            chat_id=caller.chat_id,
            document=io.BytesIO(text.encode()),
            filename=f"{run_id}.diff",
            caption=t(caller.lang, "diff_caption", run_id=run_id),
        )
        return
    await reply(update, caller, f"<pre>{esc(text)}</pre>")


async def deploys(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    n = count_arg(context.args or [], 10, caller.lang)
    items = service.deployments(ctx.settings, limit=n)
    if not items:
        return await reply(update, caller, t(caller.lang, "no_deploys"))
    lines = []
    for view in items:
        d = view.deployment
        mark = " ↩" if view.can_roll_back_to else ""
        lines.append(f"#{d.id} {d.state:<9} {d.slot:<5} {d.commit[:10]} {d.requested_by}{mark}")
    await reply(update, caller, t(caller.lang, "deploys_title") + "\n" + _pre(lines))


async def lessons(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    query = " ".join(context.args or []).strip() or None
    items = service.lessons(ctx.settings, query=query, limit=5)
    if not items:
        return await reply(update, caller, t(caller.lang, "no_lessons"))
    blocks = [f"• [{esc(x.strategy)}] {esc(clip(x.rule, 400))} ({esc(x.outcome)}, ×{x.times_seen})" for x in items]
    await reply(update, caller, t(caller.lang, "lessons_title") + "\n" + "\n".join(blocks))


async def logs(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    n = count_arg(context.args or [], 20, caller.lang)
    lines = service.logs(ctx.settings, lines=n)
    if not lines:
        return await reply(update, caller, t(caller.lang, "no_logs"))
    await reply(update, caller, _pre([clip(line, 300) for line in lines]))


async def alerts(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    n = count_arg(context.args or [], 10, caller.lang)
    items = service.alerts(ctx.settings, limit=n)
    if not items:
        return await reply(update, caller, t(caller.lang, "no_alerts"))
    lines = [f"{_when(a.at)} {a.kind}: {clip(a.message, 200)}" for a in items]
    await reply(update, caller, t(caller.lang, "alerts_title") + "\n" + _pre(lines))


# -- alerts in this chat ----------------------------------------------------------------------------
async def mute(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    args = context.args or []
    if not args or args[0] == "list":
        kinds = ctx.state.mutes(caller.chat_id)
        text = t(caller.lang, "mutes", kinds=", ".join(kinds)) if kinds else t(caller.lang, "no_mutes")
        return await reply(update, caller, text)
    kind = _kind_arg(args, caller.lang, "/mute kind")
    ctx.state.mute(caller.chat_id, kind)
    await reply(update, caller, t(caller.lang, "muted", kind=kind))


async def unmute(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    kind = _kind_arg(context.args or [], caller.lang, "/unmute kind")
    done = ctx.state.unmute(caller.chat_id, kind)
    await reply(update, caller, t(caller.lang, "unmuted" if done else "not_muted", kind=kind))


def _kind_arg(args: list[str], lang: str, usage: str) -> str:
    if not args or not re.fullmatch(r"[a-z_]{1,40}", args[0]):
        raise BadArgument(t(lang, "usage", usage=f"{usage} (e.g. bar_gap, rollback, runtime_crash)"))
    return args[0]


# -- actions ----------------------------------------------------------------------------------------
async def approve(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    await _decide(ctx, update, context, caller, True)


async def reject(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    await _decide(ctx, update, context, caller, False)


async def _decide(
    ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller, yes: bool
) -> None:
    action = "approve" if yes else "reject"
    run_id = run_id_arg(context.args or [], caller.lang, f"/{action} ID")
    if not caller.operator:  # before reading the run: a viewer learns nothing from the attempt
        return await reply(update, caller, refuse_viewer(ctx, caller, action, run_id=run_id))
    view = await decide(ctx, update.get_bot(), caller, run_id, yes)
    who = caller.principal.name or caller.principal.sender
    await reply(update, caller, outcome_text(view, caller.lang, yes, who))


async def rollback(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    args = list(context.args or [])
    to = None
    # a first word with a digit in it meant an id ("-3", "3.5", "#3", "²"): refuse it rather than
    # read it as the reason and roll back to the previous deployment instead
    if args and any(ch.isnumeric() for ch in args[0]):  # isnumeric: also "²", "½" and other scripts' digits
        to = positive_int(args.pop(0), "ID", caller.lang)
    reason = " ".join(args)
    try:
        result = await service.rollback(ctx.settings, caller.principal, to, reason)
    except service.DeploymentError as exc:
        raise BadArgument(t(caller.lang, "failed", message=str(exc))) from None
    await reply(update, caller, t(caller.lang, "rollback_done", message=result.message))


async def pause(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    service.pause(ctx.settings, caller.principal)
    await reply(update, caller, t(caller.lang, "paused"))


async def resume(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    service.resume(ctx.settings, caller.principal)
    await reply(update, caller, t(caller.lang, "resumed"))


async def reload_config(ctx: BotContext, update: Update, context: ContextTypes.DEFAULT_TYPE, caller: Caller) -> None:
    """Re-read the settings (file and environment) and apply the bot's own part: who may use it,
    the default language, where alerts go and their limits. Token and endpoint need a restart."""
    if not caller.operator:
        return await reply(update, caller, refuse_viewer(ctx, caller, "reload_config"))
    try:
        fresh = ctx.reload() if ctx.reload is not None else type(ctx.settings)()
    except Exception as exc:  # a typo in the file must not take the bot down with it
        audit(ctx.settings.data_dir, caller.principal.sender, "reload_config", False, error=str(exc)[:300])
        return await reply(update, caller, t(caller.lang, "reload_failed", message=clip(str(exc), 800)))
    changes = telegram_changes(ctx.settings, fresh)
    keep = {"token": ctx.settings.telegram.token, "base_url": ctx.settings.telegram.base_url}
    ctx.settings = ctx.settings.model_copy(update={"telegram": fresh.telegram.model_copy(update=keep)})
    audit(ctx.settings.data_dir, caller.principal.sender, "reload_config", True, changes=changes)
    if not changes:
        return await reply(update, caller, t(caller.lang, "reload_same"))
    await reply(update, caller, t(caller.lang, "reloaded", changes="; ".join(changes)))


def telegram_changes(old: Settings, new: Settings) -> list[str]:
    a, b = old.telegram, new.telegram
    out = []
    for what, before, after in (("users", a.users, b.users), ("chats", a.chats, b.chats)):
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                out.append(f"{what[:-1]} {key}: {before.get(key) or 'none'} → {after.get(key) or 'none'}")
    for name in ("language", "alert_chats", "alerts_per_minute", "alert_dedupe_s", "poll_timeout_s"):
        if getattr(a, name) != getattr(b, name):
            out.append(
                f"{name}: {getattr(a, name)} → {getattr(b, name)}"
                + (" (after a restart)" if name == "poll_timeout_s" else "")
            )
    if a.token != b.token or a.base_url != b.base_url:
        out.append("token/base_url: changed, applies after a restart")
    return out
