"""The approval message (plan, diff, verdict, Approve/Reject buttons) and the decision.

A decision comes from a button or from /approve, /reject: either way the service layer decides
(role check and audit there), then every approval message of that run is edited to the
outcome with its buttons removed, so nobody presses a button of a decided run.
"""

from __future__ import annotations

import io
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from sorte import service
from sorte.errors import SorteError
from sorte.service import NotFound, RunView, audit, audit_scope
from sorte.service.actions import RUN_ID
from sorte.telegram.access import BadArgument, BotContext, Caller, _quiet, admit, clip, get_context, log, send
from sorte.telegram.texts import esc, t

LONG_DIFF = 3000  # characters; a longer diff goes as a file, the message stays readable
CALLBACK_PREFIXES = ("approve", "reject")
MAX_CALLBACK_BYTES = 64  # Telegram's own limit on a button's data: anything longer was forged


def approval_text(view: RunView, lang: str, *, diff_inline: bool) -> str:
    parts = [t(lang, "approval_title", run_id=view.run_id)]
    if view.request:
        parts.append(f"<b>{t(lang, 'request')}</b>: {esc(clip(view.request, 300))}")
    if view.plan_summary:
        parts.append(f"<b>{t(lang, 'plan')}</b>: {esc(view.plan_summary)}")
    if view.diff and diff_inline:
        parts.append(f"<pre>{esc(view.diff)}</pre>")
    elif view.diff:
        lines = view.diff.count("\n") + 1
        parts.append(t(lang, "diff_attached", lines=lines, name=f"{view.run_id}.diff"))
    verdict = view.verdict_text or _verdict_table(view.verdict)
    if verdict:
        parts.append(f"<b>{t(lang, 'verdict')}</b>\n<pre>{esc(clip(verdict, 1200))}</pre>")
    return "\n\n".join(parts)


def _verdict_table(verdict: dict | None) -> str:
    """A plain table from the verdict's metrics when the agent gave no text of its own."""
    if not verdict:
        return ""
    rows = []
    for name, value in (verdict.get("metrics") or {}).items():
        rows.append(f"{name:<20} {value}")
    for gate in verdict.get("gates") or []:
        if isinstance(gate, dict):
            rows.append(f"{gate.get('name', '?'):<20} {'pass' if gate.get('passed') else 'FAIL'}")
    return "\n".join(rows)


def buttons(run_id: str, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(t(lang, "approve_button"), callback_data=f"approve:{run_id}"),
                InlineKeyboardButton(t(lang, "reject_button"), callback_data=f"reject:{run_id}"),
            ]
        ]
    )


async def send_approval(ctx: BotContext, bot: Any, chat_id: int, view: RunView, lang: str) -> bool:
    """Send the approval request for ``view`` to a chat, once per chat (the asker and the alert may
    overlap); False when that chat already has it."""
    claim = (view.run_id, chat_id)
    if claim in ctx.sending or any(c == chat_id for c, _ in ctx.state.approvals(view.run_id)):
        return False
    ctx.sending.add(claim)  # before the first await: the asker's reply and the alert can race here
    try:
        return await _send_approval(ctx, bot, chat_id, view, lang)
    finally:
        ctx.sending.discard(claim)


async def _send_approval(ctx: BotContext, bot: Any, chat_id: int, view: RunView, lang: str) -> bool:
    inline = len(view.diff) <= LONG_DIFF
    if not inline:
        document = io.BytesIO(view.diff.encode())
        await bot.send_document(
            chat_id=chat_id,
            document=document,
            filename=f"{view.run_id}.diff",
            caption=t(lang, "diff_caption", run_id=view.run_id),
        )
    text = clip_approval(approval_text(view, lang, diff_inline=inline), view, lang)
    message = await send(bot, chat_id, text, reply_markup=buttons(view.run_id, lang))
    ctx.state.add_approval(view.run_id, chat_id, message.message_id)
    return True


def clip_approval(text: str, view: RunView, lang: str) -> str:
    """An inline diff that still overflows (a long plan or verdict) is dropped, not cut mid-tag."""
    if len(text) <= 4000:
        return text
    return approval_text(view.model_copy(update={"diff": ""}), lang, diff_inline=False)


def outcome_text(view: RunView, lang: str, yes: bool, who: str) -> str:
    head = t(lang, "approved_by" if yes else "rejected_by", who=who)
    lines = [head, t(lang, "outcome", outcome=view.outcome or view.status)]
    if view.reply:
        lines.append(esc(view.reply))
    if view.pr_url:
        lines.append(esc(view.pr_url))
    return "\n".join(lines)


async def decide(ctx: BotContext, bot: Any, caller: Caller, run_id: str, yes: bool) -> RunView:
    """Approve or reject through the service, then settle every approval message of the run."""
    lang = caller.lang
    view = service.run(ctx.settings, run_id)  # NotFound for an unknown run
    if run_id in ctx.deciding:
        raise BadArgument(t(lang, "being_decided", run_id=run_id))
    if view.status != "awaiting_approval":
        if view.status == "done":
            raise BadArgument(t(lang, "already_decided", run_id=run_id, outcome=view.outcome or view.status))
        raise BadArgument(t(lang, "not_waiting", run_id=run_id, status=view.status))
    ctx.deciding.add(run_id)
    try:
        for chat_id, message_id in ctx.state.approvals(run_id):  # buttons off at once: no second press
            await _quiet(
                bot.edit_message_text(chat_id=chat_id, message_id=message_id, text=t(lang, "deciding", run_id=run_id))
            )
        action = service.approve if yes else service.reject
        try:
            done = await action(ctx.settings, caller.principal, run_id, llm=ctx.llm)
        except Exception:
            view = service.run(ctx.settings, run_id)
            if view.status == "awaiting_approval":  # nothing was decided: the buttons come back
                for chat_id, message_id in ctx.state.approvals(run_id):
                    await _quiet(
                        bot.edit_message_text(
                            chat_id=chat_id,
                            message_id=message_id,
                            text=clip_approval(
                                approval_text(view, lang, diff_inline=len(view.diff) <= LONG_DIFF), view, lang
                            ),
                            reply_markup=buttons(run_id, lang),
                        )
                    )
            raise
    finally:
        ctx.deciding.discard(run_id)
    who = caller.principal.name or caller.principal.sender
    ctx.tell(run_id, caller.chat_id)
    settled = outcome_text(done, lang, yes, who)
    if done.plan_summary:  # the edited message still says what was decided
        settled = f"<b>{t(lang, 'plan')}</b>: {esc(done.plan_summary)}\n\n{settled}"
    for chat_id, message_id in ctx.state.pop_approvals(run_id):
        ctx.tell(run_id, chat_id)
        await _quiet(bot.edit_message_text(chat_id=chat_id, message_id=message_id, text=clip(settled)))
    return done


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press of Approve or Reject under an approval message. Every refused press (forged or
    malformed data, a viewer, an unknown or decided run) is audited once and changes nothing."""
    ctx = get_context(context)
    query = update.callback_query
    if query is None:
        return
    lang = ctx.language(update)
    caller = await admit(ctx, update, lang)
    if caller is None:
        return
    data = query.data or ""
    action, _, run_id = data.partition(":")
    if len(data.encode()) > MAX_CALLBACK_BYTES or action not in CALLBACK_PREFIXES or not RUN_ID.fullmatch(run_id):
        _refused_press(ctx, caller, "button", "malformed button data", data=data[:80])
        await _quiet(query.answer())
        return
    if not caller.operator:  # a viewer's press changes nothing: an alert for them, a line for the audit
        _refused_press(ctx, caller, action, "not an operator", run_id=run_id)
        await _quiet(query.answer(t(lang, "viewer_button"), show_alert=True))
        return
    try:
        view = service.run(ctx.settings, run_id)
    except NotFound as exc:
        _refused_press(ctx, caller, action, "no such run", run_id=run_id)
        await _quiet(query.answer(clip(t(lang, "not_found", message=str(exc)), 190), show_alert=True))
        return
    if view.status == "done" or run_id in ctx.deciding:
        key = "already_decided" if view.status == "done" else "being_decided"
        _refused_press(ctx, caller, action, key.replace("_", " "), run_id=run_id)
        await _quiet(query.answer(clip(t(lang, key, run_id=run_id, outcome=view.outcome or view.status), 190)))
        return
    await _quiet(query.answer(t(lang, "deciding", run_id=run_id)))
    message = query.message
    if message is not None and all(m != message.message_id for _, m in ctx.state.approvals(run_id)):
        ctx.state.add_approval(run_id, message.chat.id, message.message_id)  # sent before a restart lost track
    await _decide_press(ctx, update, caller, run_id, action)


def _refused_press(ctx: BotContext, caller: Caller, action: str, reason: str, **fields: Any) -> None:
    audit(ctx.settings.data_dir, caller.principal.sender, action, False, reason=reason, via="button", **fields)


async def _decide_press(ctx: BotContext, update: Update, caller: Caller, run_id: str, action: str) -> None:
    lang = caller.lang
    try:
        with audit_scope() as audited:
            try:
                await decide(ctx, update.get_bot(), caller, run_id, action == "approve")
            except SorteError as exc:  # refused before the service layer (which audits its own)
                if not audited:
                    _refused_press(ctx, caller, action, f"{type(exc).__name__}: {exc}"[:300], run_id=run_id)
                raise
    except BadArgument as exc:
        await send(update.get_bot(), caller.chat_id, str(exc))
    except SorteError as exc:
        await send(update.get_bot(), caller.chat_id, t(lang, "failed", message=str(exc)))
    except TelegramError:
        log.exception("telegram_send_failed")
    except Exception as exc:
        log.exception("telegram_decision_failed", run_id=run_id)
        await _quiet(send(update.get_bot(), caller.chat_id, t(lang, "error", message=type(exc).__name__)))
