"""Planning the change: the lessons of earlier runs (recall), an EditPlan from the interpreter or
the coder model (plan, which also repairs a plan the guardian failed), or from a parameter
search (optimise). Every plan is dry-run on the tree before it goes to the editor."""

from __future__ import annotations

import asyncio

from pydantic import ValidationError

from knowledge import open_store
from sorte import paths
from sorte.agent.context import Context
from sorte.agent.prompts import FIX, PLAN
from sorte.agent.state import AgentState, Update
from sorte.config import Settings
from sorte.editing import branches as editing
from sorte.editing.plan import EditPlan, EditRefused
from sorte.errors import SorteError
from sorte.interpret.replies import text
from sorte.runtime.strategy import available_strategies, read_param_specs


async def recall(state: AgentState, ctx: Context) -> Update:
    return {"lessons": await asyncio.to_thread(_recall, ctx.settings, state)}


async def plan(state: AgentState, ctx: Context) -> Update:
    if state.read_plan:  # the interpreter read the plan: checked on the tree, no model
        try:
            await asyncio.to_thread(_dry_run, ctx.settings, state, state.need_plan())
        except (EditRefused, SorteError, ValueError) as exc:
            return {"outcome": "refused", "reply": text("change_refused", state.language, reason=str(exc)[:500])}
        return {"plan": state.plan, "plan_errors": [], "attempt": state.attempt + 1}
    strategy = state.need_intent().strategy or ""
    source, params = _strategy_source(ctx.settings, state, strategy)
    lessons = "\n".join(f"- {lesson}" for lesson in state.lessons) or "- none"
    prompt = PLAN.format(request=state.request, strategy=strategy, params=params, source=source, lessons=lessons)
    messages = [{"role": "user", "content": prompt}]
    if state.failures:
        messages.append({"role": "user", "content": FIX.format(errors="\n".join(state.failures))})
    errors: list[str] = []
    for _ in range(ctx.settings.agent.plan_retries + 1):
        try:
            answer = await ctx.llm.ask("coder", messages, EditPlan, stage="agent.plan", bypass_cache=bool(errors))
            planned = answer.value
            await asyncio.to_thread(_dry_run, ctx.settings, state, planned)
        except (ValidationError, EditRefused, SorteError, ValueError) as exc:
            errors.append(str(exc)[:500])
            messages.append({"role": "user", "content": FIX.format(errors=errors[-1])})
            continue
        return {"plan": planned, "plan_errors": errors, "attempt": state.attempt + 1}
    reason = errors[-1] if errors else "no plan"
    return {"plan_errors": errors, "outcome": "refused", "reply": text("change_refused", state.language, reason=reason)}


async def optimise(state: AgentState, ctx: Context) -> Update:
    """A grid search over the declared bounds, backtested in the sandbox; the best candidate that
    beats the current parameters becomes an ordinary plan (edit, validate, approve follow)."""
    # Imported when asked: the search loads the backtester and the guardian's benchmark.
    from sorte.agent.search import search

    try:
        found = await asyncio.to_thread(search, ctx.settings, state.strategy or "", state.request)
    except SorteError as exc:
        return {"outcome": "failed", "reply": text("change_refused", state.language, reason=str(exc)[:500])}
    if found.plan is None:
        return {"outcome": "answered", "reply": text("no_better", state.language, reason=found.reason)}
    return {"plan": found.plan, "attempt": state.attempt + 1}


# -- blocking helpers (run in a thread) -----------------------------------------------------------
def strategies(settings: Settings) -> list[str]:
    return sorted(available_strategies(paths.strategies_dir(settings)))


def _strategy_source(settings: Settings, state: AgentState, strategy: str) -> tuple[str, str]:
    """The strategy's source and declared parameters for the coder; for a request that names no
    strategy (a new one, say), the list of the strategies there are."""
    folder = paths.strategies_in(editing.run_tree(settings, state.run_id))
    path = folder / f"{strategy}.py"
    if not strategy or not path.is_file():
        return "# no strategy named: strategies are " + ", ".join(strategies(settings)), "-"
    specs = read_param_specs(path)
    params = "; ".join(f"{k}: {v.type} default {v.default} in [{v.min}, {v.max}]" for k, v in specs.items())
    return path.read_text(encoding="utf-8"), params


def _dry_run(settings: Settings, state: AgentState, planned: EditPlan) -> None:
    # Imported when a plan is checked: the editor's LibCST stack is heavy.
    from sorte.editing.apply import apply_plan

    result = apply_plan(planned, editing.run_tree(settings, state.run_id), write=False)
    if not result.changed:
        raise EditRefused(None, None, "the plan changes nothing")


def _recall(settings: Settings, state: AgentState) -> list[str]:
    """The rules of the lessons closest to this request (same strategy first)."""
    found = open_store(settings.knowledge, settings.data_dir).recall(state.request, strategy=state.strategy, k=5)
    return [f"{lesson.rule} ({lesson.outcome}, seen {lesson.times_seen}x)" for lesson, _score in found]
