"""The JSON API under /api/v1: the service layer's models as they are, plus the actions.

Reads are open on a loopback bind with ``open_read``, else they need the token; actions always
need ``Authorization: Bearer <token>``, checked by the edge (edges.py) before the body is read.
Errors answer ``{"detail": "..."}`` (see errors.py)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from sorte.config import Settings
from sorte.service import (
    ActionResult,
    AlertView,
    DeploymentView,
    EquityPoint,
    LessonView,
    Overview,
    PositionView,
    Principal,
    ProfitView,
    RunView,
    StageStats,
    StrategyView,
    TradeView,
    actions,
    reading,
)
from sorte.web.auth import check_action_bearer, check_read
from sorte.web.errors import ERROR_RESPONSES, ErrorBody

# Run ids are slugs (20261122-201500-a1b2c3); the pattern also keeps a path out of the journal's file names.
RUN_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
MAX_LIMIT = 500
MAX_REASON = 300
MAX_DEPLOYMENT_ID = 2**62

bearer = HTTPBearer(auto_error=False, description="settings.web.token (SORTE_WEB__TOKEN)")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
RunId = Annotated[str, Path(pattern=RUN_ID, description="An agent run id")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]


class DiffView(BaseModel):
    run_id: str
    diff: str


class LogsView(BaseModel):
    lines: list[str]


# Strict: JSON true is not deployment 1 and "1" is not a number; unknown keys are refused, not ignored.
class DecisionBody(BaseModel):
    model_config = {"extra": "forbid", "strict": True}
    comment: str = Field("", max_length=MAX_REASON)


class RollbackBody(BaseModel):
    model_config = {"extra": "forbid", "strict": True}
    to: int | None = Field(None, ge=1, le=MAX_DEPLOYMENT_ID, description="Deployment id; none = the previous one")
    reason: str = Field("", max_length=MAX_REASON)


def api_router(settings: Settings, llm: Any = None) -> APIRouter:
    """The /api/v1 routes over ``settings`` (``llm`` is handed to approve/reject's agent run)."""

    def may_read(request: Request, _: Credentials) -> None:
        check_read(settings, request)

    def operator(request: Request, _: Credentials) -> Principal:
        return check_action_bearer(settings, request)

    read = [Depends(may_read)]
    Operator = Annotated[Principal, Depends(operator)]
    router = APIRouter(prefix="/api/v1", tags=["api"], responses=ERROR_RESPONSES)

    @router.get("/overview", dependencies=read)
    def get_overview() -> Overview:
        return reading.overview(settings)

    @router.get("/positions", dependencies=read)
    def get_positions() -> list[PositionView]:
        return reading.positions(settings)

    @router.get("/trades", dependencies=read)
    def get_trades(limit: Limit = 20) -> list[TradeView]:
        return reading.trades(settings, limit=limit)

    @router.get("/profit", dependencies=read)
    def get_profit() -> ProfitView | None:
        return reading.profit(settings)

    @router.get("/equity", dependencies=read)
    def get_equity(points: Annotated[int, Query(ge=2, le=5000)] = 300) -> list[EquityPoint]:
        return reading.equity_curve(settings, points=points)

    @router.get("/stages", dependencies=read)
    def get_stages() -> list[StageStats]:
        return reading.stage_stats(settings)

    @router.get("/strategies", dependencies=read)
    def get_strategies() -> list[StrategyView]:
        return reading.strategies(settings)

    @router.get("/runs", dependencies=read)
    def get_runs(limit: Limit = 20) -> list[RunView]:
        return reading.runs(settings, limit=limit)

    @router.get("/runs/{run_id}", dependencies=read)
    def get_run(run_id: RunId) -> RunView:
        return reading.run(settings, run_id)

    @router.get("/runs/{run_id}/diff", dependencies=read)
    def get_diff(run_id: RunId) -> DiffView:
        return DiffView(run_id=run_id, diff=reading.diff(settings, run_id))

    @router.get("/deployments", dependencies=read)
    def get_deployments(limit: Limit = 20) -> list[DeploymentView]:
        return reading.deployments(settings, limit=limit)

    @router.get("/deployments/{deployment_id}", dependencies=read)
    def get_deployment(deployment_id: Annotated[int, Path(ge=1, le=2**62)]) -> DeploymentView:
        return reading.deployment(settings, deployment_id)

    @router.get("/lessons", dependencies=read)
    def get_lessons(
        q: Annotated[str | None, Query(max_length=500, description="Search words; none = the newest")] = None,
        strategy: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> list[LessonView]:
        return reading.lessons(settings, query=q, strategy=strategy, limit=limit)

    @router.get("/alerts", dependencies=read)
    def get_alerts(limit: Limit = 50) -> list[AlertView]:
        return reading.alerts(settings, limit=limit)

    @router.get("/logs", dependencies=read)
    def get_logs(lines: Annotated[int, Query(ge=1, le=2000)] = 30) -> LogsView:
        return LogsView(lines=reading.logs(settings, lines=lines))

    conflict: dict[int | str, dict[str, Any]] = {
        409: {"model": ErrorBody, "description": "The run is not waiting for approval"}
    }

    @router.post("/runs/{run_id}/approve", responses=conflict)
    async def post_approve(
        run_id: RunId, who: Operator, body: Annotated[DecisionBody | None, Body()] = None
    ) -> RunView:
        reading.run(settings, run_id)  # 404 for an unknown run rather than "not waiting"
        return await actions.approve(settings, who, run_id, (body or DecisionBody()).comment, llm=llm)

    @router.post("/runs/{run_id}/reject", responses=conflict)
    async def post_reject(run_id: RunId, who: Operator, body: Annotated[DecisionBody | None, Body()] = None) -> RunView:
        reading.run(settings, run_id)
        return await actions.reject(settings, who, run_id, (body or DecisionBody()).comment, llm=llm)

    @router.post("/rollback", responses={409: {"model": ErrorBody, "description": "Nothing to roll back"}})
    async def post_rollback(who: Operator, body: Annotated[RollbackBody | None, Body()] = None) -> ActionResult:
        body = body or RollbackBody()
        return await actions.rollback(settings, who, to=body.to, reason=body.reason)

    @router.post("/pause")
    def post_pause(who: Operator) -> ActionResult:
        return actions.pause(settings, who)

    @router.post("/resume")
    def post_resume(who: Operator) -> ActionResult:
        return actions.resume(settings, who)

    return router
