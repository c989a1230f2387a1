"""Shipping an approved change: merged into the base branch (publish; pushed and opened as a
pull request first when GitHub is configured) and handed to the commander as a requested
deployment (deploy). A rejected change is abandoned instead. Every step is keyed by the run id:
a resumed run repeats none of them."""

from __future__ import annotations

import asyncio

import structlog

from commander.requests import request_deployment
from sorte.agent import journal
from sorte.agent.context import Context
from sorte.agent.state import AgentState, Update
from sorte.config import Settings
from sorte.editing import branches as editing
from sorte.interpret.replies import text

log = structlog.get_logger("sorte.agent")


async def publish(state: AgentState, ctx: Context) -> Update:
    decision = state.decision
    if decision is None or not decision.approve:
        await asyncio.to_thread(_abandon_once, ctx.settings, state.run_id)
        return {"outcome": "rejected", "reply": text("rejected", state.language, branch=state.branch)}
    update: Update = {}
    if ctx.settings.github.configured:
        update = await asyncio.to_thread(open_pull_request, ctx.settings, state)
    sha = await asyncio.to_thread(editing.merge_once, ctx.settings, state.run_id)
    return {**update, "outcome": "merged", "merged_sha": sha}


async def deploy(state: AgentState, ctx: Context) -> Update:
    deploy_id = journal.request_deploy(ctx.settings.data_dir, state.run_id, state.merged_sha, state.request)
    await asyncio.to_thread(_request_deployment, ctx.settings, state, deploy_id)
    sha = state.merged_sha[:10]
    reply = text("merged", state.language, summary=state.plan_summary, sha=sha, deploy=deploy_id)
    if state.pr_url:
        reply += f" PR: {state.pr_url}"
    return {"deploy_id": deploy_id, "reply": reply}


# -- blocking helpers (run in a thread) -----------------------------------------------------------
def _abandon_once(settings: Settings, run_id: str) -> None:
    branches = {b.run_id: b.state for b in editing.branches(settings)}
    if branches.get(run_id) == "open":
        editing.abandon(settings, run_id)


def open_pull_request(settings: Settings, state: AgentState) -> Update:
    """Push the run's branch and open its pull request, or find the one a previous try opened."""
    # Imported when GitHub is configured: PyGithub takes half a second to load.
    from sorte.github import GitHubTarget, open_or_get_pr, pr_body, push_branch

    gh = settings.github
    base = editing.base_branch(settings)
    target = GitHubTarget(repo=gh.repo, token=gh.token, api_url=gh.api_url, base=base, remote_url=gh.remote_url)
    push_branch(editing.git_config(settings).repo_root, state.branch, target)
    body = pr_body(
        state.request,
        state.plan_summary,
        editing.diff_stat(settings, base, state.branch),
        state.need_verdict().to_markdown(),
    )
    pr = open_or_get_pr(target, state.branch, state.plan_summary or state.request[:80], body)
    log.info("agent.pull_request", run_id=state.run_id, number=pr.number, created=pr.created)
    return {"pr_url": pr.url, "pr_number": pr.number}


def _request_deployment(settings: Settings, state: AgentState, deploy_id: str) -> None:
    """Hand the merged commit to the commander: a requested deployment, once per run."""
    deployment = request_deployment(settings.data_dir, state.merged_sha, state.run_id, deploy_id)
    log.info("agent.deploy_requested", run_id=state.run_id, deployment=deployment.id, slot=deployment.slot)
