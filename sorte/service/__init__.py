"""One service layer behind every front-end: Telegram, the HTTP API, the status page and the CLI
call these functions and get these models; none of them reads a store of its own.

Reading: :mod:`sorte.service.reading`. Actions (each checked against the caller's role and
written to the audit log): :mod:`sorte.service.actions`. Who may do what: :mod:`sorte.service.access`.
"""

# What front-ends receive from the layers below: the agent's run view and the errors the actions
# raise, named here so that a front-end imports nothing but this layer.
from commander.deployment import CommitRejected, DeploymentError, UnknownDeployment
from sorte.agent.runs import AgentError
from sorte.agent.views import RunView
from sorte.service.access import Forbidden, Principal, audit, audit_scope, read_audit
from sorte.service.actions import approve, ask, pause, reject, resume, rollback
from sorte.service.reading import (
    NotFound,
    alerts,
    alerts_after,
    deployment,
    deployments,
    diff,
    equity_curve,
    feed,
    health,
    lessons,
    logs,
    overview,
    positions,
    profit,
    run,
    run_timeline,
    runs,
    slot_metrics,
    stage_stats,
    strategies,
    trades,
)
from sorte.service.views import (
    ActionResult,
    AlertView,
    DeploymentView,
    EquityPoint,
    FeedView,
    Health,
    LessonView,
    Overview,
    PositionView,
    ProfitView,
    StageStats,
    StrategyView,
    SymbolFeedView,
    TradeView,
    seconds_text,
)

__all__ = [
    "AgentError",
    "CommitRejected",
    "DeploymentError",
    "RunView",
    "UnknownDeployment",
    "ActionResult",
    "AlertView",
    "DeploymentView",
    "EquityPoint",
    "FeedView",
    "Forbidden",
    "Health",
    "LessonView",
    "NotFound",
    "Overview",
    "PositionView",
    "Principal",
    "ProfitView",
    "StageStats",
    "StrategyView",
    "SymbolFeedView",
    "TradeView",
    "alerts",
    "alerts_after",
    "approve",
    "ask",
    "audit",
    "audit_scope",
    "deployment",
    "deployments",
    "diff",
    "equity_curve",
    "feed",
    "health",
    "lessons",
    "logs",
    "overview",
    "pause",
    "positions",
    "profit",
    "read_audit",
    "reject",
    "resume",
    "rollback",
    "run",
    "run_timeline",
    "runs",
    "seconds_text",
    "slot_metrics",
    "stage_stats",
    "strategies",
    "trades",
]
