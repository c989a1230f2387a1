"""The graph's conditional edges: where a run goes after each node that can end it early.

A node that knows how the run ends sets ``outcome`` (refused, answered, failed...): the run
then goes straight to report.
"""

from __future__ import annotations

from collections.abc import Callable

from sorte.agent.state import AgentState


def report_or(next_node: str) -> Callable[[AgentState], str]:
    """The edge of a node that either ends the run or hands it to ``next_node``."""

    def route(state: AgentState) -> str:
        return "report" if state.outcome else next_node

    route.__name__ = f"report_or_{next_node}"
    return route


def after_interpret(state: AgentState) -> str:
    if state.outcome:
        return "report"
    return "recall" if state.need_intent().kind in ("change", "optimise") else "answer"


def after_recall(state: AgentState) -> str:
    return "optimise" if state.need_intent().kind == "optimise" else "plan"


def after_validate(state: AgentState, max_attempts: int) -> str:
    if state.need_verdict().overall != "fail":
        return "approve"
    if state.attempt < max_attempts and not state.read_plan:
        return "plan"  # repair: the failures go back to the planner
    return "learn"


def after_publish(state: AgentState) -> str:
    return "deploy" if state.outcome == "merged" else "learn"
