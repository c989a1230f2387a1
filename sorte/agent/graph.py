"""The agent's LangGraph: from a message to an approved, merged and deploy-requested change.

receive → interpret → (answer | recall → (optimise | plan) → edit → validate → [repair → plan …]
→ approve (interrupt) → publish → deploy → learn) → report. Every node is recorded in the audit
log; every side effect is keyed by the run id so that a resumed run repeats none of them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypedDict

import structlog
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from pydantic import ValidationError

from sorte import paths
from sorte.agent import journal
from sorte.agent.models import Decision, Intent, RunView
from sorte.agent.prompts import FIX, PLAN, reply
from sorte.config import Settings
from sorte.editing.plan import EditPlan, EditRefused
from sorte.errors import SorteError
from sorte.interpret import replies
from sorte.interpret.text import language as language_of

log = structlog.get_logger("sorte.agent")

PARAMETER_OPS = {"set_param", "set_stage", "set_min_confidence"}
Event = Callable[[str, str, dict], None]


class AgentState(TypedDict, total=False):
    run_id: str
    request: str
    sender: str
    channel: str
    language: str
    outcome: str
    reply: str
    intent: dict
    reading: dict  # the interpreter's reading (sorte.interpret.Reading)
    lessons: list[str]
    plan: dict
    plan_errors: list[str]
    attempt: int
    failures: list[str]
    branch: str
    commit: str
    diff: str
    verdict: dict
    pass_at: dict[str, bool]
    decision: dict
    merged_sha: str
    pr_url: str
    pr_number: int
    target_run: str
    deploy_id: str
    lesson_id: str


class Agent:
    """The graph's nodes, bound to the settings, an LLM client and a progress callback."""

    def __init__(self, settings: Settings, llm: Any, on_event: Event | None = None) -> None:
        self.settings = settings
        self.llm = llm
        self.on_event = on_event or (lambda node, event, info: None)

    # -- plumbing ------------------------------------------------------------------------------
    def _node(self, name: str, fn: Callable[[AgentState], Awaitable[dict]]) -> Callable[[AgentState], Awaitable[dict]]:
        async def run(state: AgentState) -> dict:
            run_id = state.get("run_id", "")
            journal.audit(self.settings.data_dir, run_id, name, "enter")
            self.on_event(name, "enter", {})
            t0 = time.perf_counter()
            try:
                update = await fn(state)
            except Exception as exc:
                # LangGraph's interrupt is an exception too: it is not a failure.
                kind = "interrupt" if type(exc).__name__ == "GraphInterrupt" else "error"
                journal.audit(self.settings.data_dir, run_id, name, kind, error=str(exc)[:300])
                if kind == "interrupt":
                    self._save_view({**state}, "awaiting_approval", name)
                raise
            elapsed = round(time.perf_counter() - t0, 3)
            journal.audit(
                self.settings.data_dir, run_id, name, "leave", duration_s=elapsed, outcome=update.get("outcome")
            )
            self.on_event(name, "leave", {"duration_s": elapsed, **{k: update[k] for k in ("outcome",) if k in update}})
            self._save_view({**state, **update}, "done" if name == "report" else "running", name)
            return update

        return run

    def _save_view(self, state: dict, status: str, node: str) -> None:
        intent = state.get("intent") or {}
        verdict = state.get("verdict")
        view = RunView(
            run_id=state.get("run_id", ""),
            request=state.get("request", ""),
            sender=state.get("sender", ""),
            status=status,  # type: ignore[arg-type]
            outcome=state.get("outcome", ""),  # type: ignore[arg-type]
            intent=intent.get("kind", ""),
            strategy=intent.get("strategy"),
            language=state.get("language", "en"),  # type: ignore[arg-type]
            reply=state.get("reply", ""),
            plan_summary=(state.get("plan") or {}).get("summary", ""),
            plan=state.get("plan"),
            branch=state.get("branch", ""),
            commit=state.get("commit", ""),
            diff=state.get("diff", ""),
            verdict=verdict,
            verdict_text=_verdict_text(verdict),
            attempts=state.get("attempt", 0),
            pass_at=state.get("pass_at", {}),
            merged_sha=state.get("merged_sha", ""),
            pr_url=state.get("pr_url", ""),
            deploy_id=state.get("deploy_id", ""),
            next_node=node,
        )
        journal.save_view(self.settings.data_dir, view)

    def build(self) -> StateGraph:
        g = StateGraph(AgentState)
        for name in (
            "receive",
            "interpret",
            "answer",
            "recall",
            "optimise",
            "plan",
            "edit",
            "validate",
            "approve",
            "publish",
            "deploy",
            "learn",
            "report",
        ):
            g.add_node(name, self._node(name, getattr(self, name)))
        g.add_edge(START, "receive")
        g.add_conditional_edges("receive", lambda s: "report" if s.get("outcome") else "interpret")
        g.add_conditional_edges("interpret", self._after_interpret)
        g.add_edge("answer", "report")
        g.add_conditional_edges("recall", lambda s: "optimise" if s["intent"]["kind"] == "optimise" else "plan")
        g.add_conditional_edges("optimise", lambda s: "report" if s.get("outcome") else "edit")
        g.add_conditional_edges("plan", lambda s: "report" if s.get("outcome") else "edit")
        g.add_conditional_edges("edit", lambda s: "report" if s.get("outcome") else "validate")
        g.add_conditional_edges("validate", self._after_validate)
        g.add_edge("approve", "publish")
        g.add_conditional_edges("publish", lambda s: "deploy" if s.get("outcome") == "merged" else "learn")
        g.add_edge("deploy", "learn")
        g.add_edge("learn", "report")
        g.add_edge("report", END)
        return g

    # -- routing -------------------------------------------------------------------------------
    @staticmethod
    def _after_interpret(state: AgentState) -> str:
        if state.get("outcome"):
            return "report"
        kind = state["intent"]["kind"]
        return "recall" if kind in ("change", "optimise") else "answer"

    def _after_validate(self, state: AgentState) -> str:
        overall = state["verdict"]["overall"]
        if overall != "fail":
            return "approve"
        if state.get("attempt", 0) < self.settings.agent.max_attempts and not _read_plan(state):
            return "plan"  # repair: the failures go back to the planner
        return "learn"

    # -- nodes ---------------------------------------------------------------------------------
    async def receive(self, state: AgentState) -> dict:
        sender = f"{state.get('channel', 'cli')}:{state.get('sender', 'local')}"
        language = language_of(state["request"])
        if not self.settings.may_command(sender):
            log.warning("agent.unauthorised", sender=sender, run_id=state["run_id"])
            return {"language": language, "outcome": "unauthorised", "reply": reply("unauthorised", language)}
        return {"language": language, "attempt": 0, "pass_at": {}, "failures": []}

    async def interpret(self, state: AgentState) -> dict:
        """The catalogue-grounded interpreter: tier 1 with no model, tier 2 only where it is unsure."""
        from sorte.interpret import build_catalogue, interpret
        from sorte.interpret.constrained import ROLE
        from sorte.llm.embedded import only_embedded

        catalogue = await asyncio.to_thread(build_catalogue, paths.repo_root(self.settings))
        weak = only_embedded(self.settings.llm, ROLE)
        reading = await interpret(state["request"], catalogue, self.llm, weak_model=weak)
        lang = reading.language
        intent = Intent(kind=reading.intent, strategy=reading.strategy, language=lang, summary=reading.restated()[:300])
        update: dict = {"intent": intent.model_dump(), "language": lang, "reading": reading.model_dump(mode="json")}
        self.on_event("interpret", "reading", {"action": reading.action, "tier": reading.tier, "text": reading.message})
        if reading.action == "edit" and reading.plan is not None:
            update["plan"] = reading.plan.model_dump(mode="json")
        elif reading.action == "code":
            if only_embedded(self.settings.llm, "coder"):
                update |= {"outcome": "refused", "reply": replies.text("coder_missing", lang)}
        elif reading.action == "ask":
            update |= {"outcome": "clarify", "reply": reading.message}
        elif reading.action == "refuse":
            update |= {"outcome": "refused", "reply": reading.message}
        elif reading.intent == "change":  # already so: nothing to run
            update |= {"outcome": "answered", "reply": reading.message}
        if reading.intent in ("approve", "reject", "rollback") and reading.tier != 1:
            update |= {"outcome": "clarify", "reply": reply("help", lang)}  # never on a model's guess
        return update

    async def answer(self, state: AgentState) -> dict:
        """Everything that changes no code, answered from the service layer and the catalogue."""
        from sorte.agent import answers
        from sorte.interpret import build_catalogue

        intent = Intent.model_validate(state["intent"])
        lang = intent.language
        if intent.kind in ("approve", "reject"):
            return _pending_target(self.settings, lang, state)
        if intent.kind == "rollback":
            return await _rollback(self.settings, lang, state)
        if intent.kind == "status":
            text = await asyncio.to_thread(answers.status, self.settings, lang, state["run_id"])
        elif intent.kind == "pnl":
            text = await asyncio.to_thread(answers.pnl, self.settings, lang)
        elif intent.kind == "lessons":
            text = await asyncio.to_thread(answers.lessons, self.settings, intent.strategy, lang)
        elif intent.kind == "explain":
            catalogue = await asyncio.to_thread(build_catalogue, paths.repo_root(self.settings))
            text = answers.explain(catalogue, intent.strategy, lang)
        else:
            text = reply("help", lang)
        return {"outcome": "answered", "reply": text}

    async def recall(self, state: AgentState) -> dict:
        return {"lessons": await asyncio.to_thread(_recall, self.settings, state)}

    async def plan(self, state: AgentState) -> dict:
        if _read_plan(state):  # the interpreter read the plan: checked on the tree, no model
            plan = EditPlan.model_validate(state["plan"])
            try:
                await asyncio.to_thread(_dry_run, self.settings, state, plan)
            except (EditRefused, SorteError, ValueError) as exc:
                return {"outcome": "refused", "reply": reply("refused", state["language"], reason=str(exc)[:500])}
            return {"plan": state["plan"], "plan_errors": [], "attempt": state.get("attempt", 0) + 1}
        intent = Intent.model_validate(state["intent"])
        strategy = intent.strategy or ""
        source, params = _strategy_source(self.settings, state, strategy)
        lessons = "\n".join(f"- {text}" for text in state.get("lessons", [])) or "- none"
        messages = [
            {
                "role": "user",
                "content": PLAN.format(
                    request=state["request"], strategy=strategy, params=params, source=source, lessons=lessons
                ),
            }
        ]
        if state.get("failures"):
            messages.append({"role": "user", "content": FIX.format(errors="\n".join(state["failures"]))})
        errors: list[str] = []
        for _ in range(self.settings.agent.plan_retries + 1):
            try:
                answer = await self.llm.ask("coder", messages, EditPlan, stage="agent.plan", bypass_cache=bool(errors))
                plan = answer.value
                await asyncio.to_thread(_dry_run, self.settings, state, plan)
            except (ValidationError, EditRefused, SorteError, ValueError) as exc:
                errors.append(str(exc)[:500])
                messages.append({"role": "user", "content": FIX.format(errors=errors[-1])})
                continue
            return {"plan": plan.model_dump(mode="json"), "plan_errors": errors, "attempt": state.get("attempt", 0) + 1}
        return {
            "plan_errors": errors,
            "outcome": "refused",
            "reply": reply("refused", state.get("language", "en"), reason=errors[-1] if errors else "no plan"),
        }

    async def optimise(self, state: AgentState) -> dict:
        """A grid search over the declared bounds, backtested in the sandbox; the best candidate that
        beats the current parameters becomes an ordinary plan (edit, validate, approve follow)."""
        from sorte.agent.search import search

        strategy = state["intent"]["strategy"]
        try:
            found = await asyncio.to_thread(search, self.settings, strategy, state["request"])
        except SorteError as exc:
            return {"outcome": "failed", "reply": reply("refused", state["language"], reason=str(exc)[:500])}
        if found.plan is None:
            return {"outcome": "answered", "reply": reply("no_better", state["language"], reason=found.reason)}
        return {"plan": found.plan.model_dump(mode="json"), "attempt": state.get("attempt", 0) + 1}

    async def edit(self, state: AgentState) -> dict:
        from sorte.editing import service

        plan = EditPlan.model_validate(state["plan"])
        try:
            outcome = await asyncio.to_thread(
                service.edit_on_branch, self.settings, plan, state["request"], state["run_id"], False
            )
        except SorteError as exc:
            return {"outcome": "refused", "reply": reply("refused", state["language"], reason=str(exc))}
        if not outcome.kept:
            reason = "the plan changes nothing"
            return {"outcome": "refused", "reply": reply("refused", state["language"], reason=reason)}
        # The branch's commit: a resumed run finds its plan already committed (commit None).
        commit = outcome.commit or await asyncio.to_thread(_branch_tip, self.settings, outcome.branch)
        return {"branch": outcome.branch, "commit": commit, "diff": outcome.branch_diff}

    async def validate(self, state: AgentState) -> dict:
        from guardian.validate import validate

        verdict = await asyncio.to_thread(validate, self.settings, state["branch"])
        data = {**verdict.model_dump(mode="json"), "overall": verdict.overall, "text": verdict.to_text()}
        attempt = state.get("attempt", 1)
        pass_at = {**state.get("pass_at", {}), str(attempt): verdict.overall == "pass"}
        update: dict = {"verdict": data, "pass_at": pass_at}
        if verdict.overall == "fail":
            failures = verdict.reasons() + [f"{f.where()} {f.message}".strip() for f in verdict.findings[:10]]
            update["failures"] = failures
            if attempt >= self.settings.agent.max_attempts or _read_plan(state):
                reasons = "; ".join(verdict.reasons())
                update |= {
                    "outcome": "failed",
                    "reply": reply("failed", state["language"], attempts=attempt, reasons=reasons),
                }
        return update

    async def approve(self, state: AgentState) -> dict:
        plan = EditPlan.model_validate(state["plan"])
        if self._auto_approvable(plan, state):
            return {"decision": Decision(approve=True, by="policy:auto_approve").model_dump()}
        payload = {
            "run_id": state["run_id"],
            "request": state["request"],
            "summary": plan.summary,
            "plan": state["plan"],
            "diff": state.get("diff", ""),
            "verdict": state["verdict"]["text"],
            "language": state["language"],
            "question": reply("approval", state["language"], summary=plan.summary, verdict=state["verdict"]["text"]),
        }
        decision = Decision.model_validate(interrupt(payload))
        return {"decision": decision.model_dump()}

    def _auto_approvable(self, plan: EditPlan, state: AgentState) -> bool:
        return (
            self.settings.agent.auto_approve
            and self.settings.runtime.mode == "paper"
            and state["verdict"]["overall"] == "pass"
            and all(op.op in PARAMETER_OPS for op in plan.ops)
            and (state.get("reading") or {}).get("tier", 1) == 1
        )

    async def publish(self, state: AgentState) -> dict:
        from sorte.editing import service

        decision = Decision.model_validate(state["decision"])
        if not decision.approve:
            await asyncio.to_thread(_abandon_once, self.settings, state["run_id"])
            return {"outcome": "rejected", "reply": reply("rejected", state["language"], branch=state["branch"])}
        update: dict = {}
        if self.settings.github.configured:
            update = await asyncio.to_thread(_open_pull_request, self.settings, state)
        sha = await asyncio.to_thread(service.merge_once, self.settings, state["run_id"])
        return {**update, "outcome": "merged", "merged_sha": sha}

    async def deploy(self, state: AgentState) -> dict:
        deploy_id = journal.request_deploy(
            self.settings.data_dir, state["run_id"], state["merged_sha"], state["request"]
        )
        await asyncio.to_thread(_request_deployment, self.settings, state, deploy_id)
        plan_summary = (state.get("plan") or {}).get("summary", "")
        text = reply("merged", state["language"], summary=plan_summary, sha=state["merged_sha"][:10], deploy=deploy_id)
        if state.get("pr_url"):
            text += f" PR: {state['pr_url']}"
        return {"deploy_id": deploy_id, "reply": text}

    async def learn(self, state: AgentState) -> dict:
        lesson_id = await asyncio.to_thread(_learn, self.settings, state)
        return {"lesson_id": lesson_id} if lesson_id else {}

    async def report(self, state: AgentState) -> dict:
        outcome = state.get("outcome") or "failed"
        text = state.get("reply") or reply("failed", state.get("language", "en"), attempts=0, reasons="no reply")
        log.info("agent.report", run_id=state["run_id"], outcome=outcome, pass_at=state.get("pass_at"))
        return {"outcome": outcome, "reply": text}


# -- helpers (blocking: run in a thread) --------------------------------------------------------
def _read_plan(state: AgentState) -> bool:
    """The plan came from the interpreter (a parameter or cascade change), not from the coder."""
    return (state.get("reading") or {}).get("action") == "edit" and bool(state.get("plan"))


def _strategies(settings: Settings) -> list[str]:
    from sorte.runtime.strategy import available_strategies

    return sorted(available_strategies(paths.strategies_dir(settings)))


def _tree_of(settings: Settings, state: AgentState):
    """The run's worktree once it exists (repairs build on the branch), else the base checkout."""
    from sorte.editing import gitops

    root = paths.repo_root(settings)
    run = gitops.find_run(root, state["run_id"])
    return run.path if run is not None and run.path.is_dir() else root


def _strategy_source(settings: Settings, state: AgentState, strategy: str) -> tuple[str, str]:
    """The strategy's source and declared parameters for the coder; for a request that names no
    strategy (a new one, say), the list of the strategies there are."""
    from sorte.runtime.strategy import read_param_specs

    folder = paths.strategies_in(_tree_of(settings, state))
    path = folder / f"{strategy}.py"
    if not strategy or not path.is_file():
        return "# no strategy named: strategies are " + ", ".join(_strategies(settings)), "-"
    specs = read_param_specs(path)
    params = "; ".join(f"{k}: {v.type} default {v.default} in [{v.min}, {v.max}]" for k, v in specs.items())
    return path.read_text(encoding="utf-8"), params


def _dry_run(settings: Settings, state: AgentState, plan: EditPlan) -> None:
    from sorte.editing.apply import apply_plan

    result = apply_plan(plan, _tree_of(settings, state), write=False)
    if not result.changed:
        raise EditRefused(None, None, "the plan changes nothing")


def _branch_tip(settings: Settings, branch: str) -> str:
    import git

    return git.Repo(paths.repo_root(settings)).git.rev_parse(f"refs/heads/{branch}")


def _abandon_once(settings: Settings, run_id: str) -> None:
    from sorte.editing import gitops, service

    branches = {b.run_id: b.state for b in gitops.list_branches(paths.repo_root(settings))}
    if branches.get(run_id) == "open":
        service.abandon(settings, run_id)


def _open_pull_request(settings: Settings, state: AgentState) -> dict:
    """Push the run's branch and open its pull request, or find the one a previous try opened."""
    import git

    from guardian.verdict import Verdict
    from sorte.editing.service import git_config
    from sorte.github import GitHubTarget, open_or_get_pr, pr_body, push_branch

    cfg = git_config(settings)
    gh = settings.github
    repo = git.Repo(cfg.repo_root)
    base = cfg.base or ("main" if "main" in repo.heads else "master")
    target = GitHubTarget(repo=gh.repo, token=gh.token, api_url=gh.api_url, base=base, remote_url=gh.remote_url)
    push_branch(cfg.repo_root, state["branch"], target)
    fields = {k: v for k, v in state["verdict"].items() if k not in ("overall", "text")}
    plan_summary = (state.get("plan") or {}).get("summary", "")
    body = pr_body(
        state["request"],
        plan_summary,
        repo.git.diff("--stat", f"{base}...{state['branch']}"),
        Verdict.model_validate(fields).to_markdown(),
    )
    pr = open_or_get_pr(target, state["branch"], plan_summary or state["request"][:80], body)
    log.info("agent.pull_request", run_id=state["run_id"], number=pr.number, created=pr.created)
    return {"pr_url": pr.url, "pr_number": pr.number}


def _request_deployment(settings: Settings, state: AgentState, deploy_id: str) -> None:
    """Hand the merged commit to the commander: a requested deployment, once per run."""
    from commander.requests import request_deployment

    deployment = request_deployment(settings.data_dir, state["merged_sha"], state["run_id"], deploy_id)
    log.info("agent.deploy_requested", run_id=state["run_id"], deployment=deployment.id, slot=deployment.slot)


def _store(settings: Settings):
    from knowledge import open_store

    return open_store(settings.knowledge, settings.data_dir)


def _recall(settings: Settings, state: AgentState) -> list[str]:
    """The rules of the lessons closest to this request (same strategy first)."""
    strategy = (state.get("intent") or {}).get("strategy")
    found = _store(settings).recall(state["request"], strategy=strategy, k=5)
    return [f"{lesson.rule} ({lesson.outcome}, seen {lesson.times_seen}x)" for lesson, _score in found]


def _learn(settings: Settings, state: AgentState) -> str:
    """One lesson per run (a resumed run finds the one it stored): what was asked, tried and seen."""
    from knowledge import Lesson

    store = _store(settings)
    lesson_id = f"run-{state['run_id']}"
    if store.get(lesson_id) is not None:
        return lesson_id
    verdict = state.get("verdict") or {}
    plan = (state.get("plan") or {}).get("summary", "") or state["request"]
    outcome = {"merged": "merged", "rejected": "rejected"}.get(state.get("outcome", ""), "failed")
    rule = {
        "merged": f"{plan}: approved and merged (verdict {verdict.get('overall', 'none')})",
        "rejected": f"{plan}: rejected by the trader",
    }.get(outcome, f"{plan}: failed validation ({'; '.join(state.get('failures', [])[:2])[:300]})")
    deltas = {
        m["metric"]: float(m["delta"])
        for g in verdict.get("gates", [])
        for m in g.get("metrics", [])
        if m.get("delta") is not None
    }
    ops = {op.get("op") for op in (state.get("plan") or {}).get("ops", [])}
    lesson = Lesson(
        id=lesson_id,
        request=state["request"],
        strategy=(state.get("intent") or {}).get("strategy") or "cascade",
        kind="parameter" if ops <= PARAMETER_OPS else "code",
        plan_summary=plan,
        outcome=outcome,
        verdict=verdict.get("overall", "none"),
        metric_deltas=deltas,
        rule=rule,
        commit=state.get("merged_sha") or state.get("commit") or None,
        run_id=state["run_id"],
        language=state.get("language", "en"),
    )
    return store.add(lesson).id


def _pending_target(settings: Settings, language: str, state: AgentState) -> dict:
    """The run an approve/reject message is about: the one named in it, else the only one waiting."""
    waiting = [
        v.run_id
        for v in journal.list_views(settings.data_dir)
        if v.status == "awaiting_approval" and v.run_id != state["run_id"]
    ]
    named = [run_id for run_id in waiting if run_id in state["request"]]
    if len(named) == 1 or len(waiting) == 1:
        target = (named or waiting)[0]
        return {"outcome": "answered", "target_run": target, "reply": target}
    key = "nothing_waiting" if not waiting else "which_run"
    return {"outcome": "answered", "reply": reply(key, language, runs=", ".join(waiting))}


def _verdict_text(verdict: dict | None) -> str:
    return (verdict or {}).get("text", "")


async def _rollback(settings: Settings, lang: str, state: AgentState) -> dict:
    """Through the commander: a lease hand-over back to the previous deployment (idempotent)."""
    from commander.service import rollback

    sender = f"{state.get('channel', 'cli')}:{state.get('sender', 'local')}"
    reason = f"asked by {sender} (run {state['run_id']}): {state['request'][:200]}"
    try:
        result = await asyncio.to_thread(rollback, settings, None, reason)
    except SorteError as exc:
        return {"outcome": "failed", "reply": reply("rollback_failed", lang, reason=str(exc)[:300])}
    return {"outcome": "answered", "reply": reply("rolled_back", lang, result=result)}
