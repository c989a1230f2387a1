"""The agent's LangGraph: from a message to an approved, merged and deploy-requested change.

receive → interpret → (answer | recall → (optimise | plan) → edit → validate → [repair → plan …]
→ approve (interrupt) → publish → deploy → learn) → report. Every node is recorded in the audit
log; every side effect is keyed by the run id so that a resumed run repeats none of them.
"""

from __future__ import annotations

from functools import partial

from langgraph.graph import END, START, StateGraph

from sorte.agent import routing
from sorte.agent.context import Context
from sorte.agent.nodes import checking, learning, planning, publishing, reading
from sorte.agent.recording import recorded
from sorte.agent.state import AgentState

NODES = {
    "receive": reading.receive,
    "interpret": reading.interpret,
    "answer": reading.answer,
    "recall": planning.recall,
    "optimise": planning.optimise,
    "plan": planning.plan,
    "edit": checking.edit,
    "validate": checking.validate,
    "approve": checking.approve,
    "publish": publishing.publish,
    "deploy": publishing.deploy,
    "learn": learning.learn,
    "report": learning.report,
}


def build(ctx: Context) -> StateGraph:
    g = StateGraph(AgentState)
    for name, node in NODES.items():
        g.add_node(name, recorded(name, partial(node, ctx=ctx), ctx))
    g.add_edge(START, "receive")
    g.add_conditional_edges("receive", routing.report_or("interpret"))
    g.add_conditional_edges("interpret", routing.after_interpret)
    g.add_edge("answer", "report")
    g.add_conditional_edges("recall", routing.after_recall)
    g.add_conditional_edges("optimise", routing.report_or("edit"))
    g.add_conditional_edges("plan", routing.report_or("edit"))
    g.add_conditional_edges("edit", routing.report_or("validate"))
    g.add_conditional_edges("validate", partial(routing.after_validate, max_attempts=ctx.settings.agent.max_attempts))
    g.add_edge("approve", "publish")
    g.add_conditional_edges("publish", routing.after_publish)
    g.add_edge("deploy", "learn")
    g.add_edge("learn", "report")
    g.add_edge("report", END)
    return g
