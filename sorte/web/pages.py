"""The server-rendered status page: overview, runs, deployments, lessons, and the action forms.

Actions are POST forms carrying the session cookie the login form sets. After an action the
browser is redirected back to the page it came from with a one-shot flash message (a cookie the
next page shows and deletes); a refused or failed action renders an error page with its status."""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from sorte.config import Settings
from sorte.errors import SorteError
from sorte.service import ActionResult, actions, audit, reading, seconds_text
from sorte.web.api import MAX_REASON, RUN_ID
from sorte.web.auth import COOKIE, check_action_session, check_read, logged_in, session_value, token_matches
from sorte.web.charts import equity_svg

FLASH = "sorte_flash"
TEMPLATES = Path(__file__).parent / "templates"


def _when(epoch: float | None) -> str:
    if not epoch:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + " UTC"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _safe_link(url: str) -> str | None:
    """Only http(s) links become anchors: a javascript: URL from a run record must not be clickable."""
    return url if url.startswith(("https://", "http://")) else None


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.filters.update(when=_when, pct=_pct, ms=_ms, age=seconds_text, safe_link=_safe_link)
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
    return templates


def _local_path(target: str | None, default: str) -> str:
    """A redirect target on this site only (an open redirect would let a link send users elsewhere)."""
    # control characters would split the Location header; a backslash or // would leave the site
    if not target:
        return default
    on_site = target.startswith("/") and not target.startswith("//") and "\\" not in target
    return target if on_site and target.isprintable() and target.isascii() else default


def _pack_flash(ok: bool, message: str) -> str:
    # base64 keeps quotes, commas and non-ASCII out of the cookie's own syntax
    return base64.urlsafe_b64encode(json.dumps({"ok": ok, "message": message[:1000]}).encode()).decode()


def _unpack_flash(raw: str) -> dict[str, Any] | None:
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        return None
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return None
    return {"ok": bool(data.get("ok")), "message": data["message"]}


def pages_router(settings: Settings, templates: Jinja2Templates, llm: Any = None) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        raw = request.cookies.get(FLASH)
        flash = _unpack_flash(raw) if raw else None
        base = {"logged_in": logged_in(settings, request), "flash": flash, "path": request.url.path}
        response = templates.TemplateResponse(request, name, {**base, **context}, status_code=status)
        if raw:
            response.delete_cookie(FLASH, path="/")
        return response

    def done(result: ActionResult | str, ok: bool, target: str) -> RedirectResponse:
        message = result.message if isinstance(result, ActionResult) else result
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(FLASH, _pack_flash(ok, message), max_age=60, httponly=True, samesite="strict", path="/")
        return response

    # -- reading ------------------------------------------------------------------------
    @router.get("/", response_class=HTMLResponse)
    def overview_page(request: Request) -> Response:
        check_read(settings, request)
        view = reading.overview(settings)
        curve = reading.equity_curve(settings, points=300)
        initial = view.profit.initial_cash if view.profit else None
        context = {"o": view, "chart": equity_svg(curve, initial), "title": "Overview"}
        return render(request, "overview.html", context)

    @router.get("/runs", response_class=HTMLResponse)
    def runs_page(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
        check_read(settings, request)
        return render(request, "runs.html", {"runs": reading.runs(settings, limit=limit), "title": "Runs"})

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: Annotated[str, PathParam(pattern=RUN_ID)]) -> Response:
        check_read(settings, request)
        view = reading.run(settings, run_id)
        timeline = reading.run_timeline(settings, run_id)
        return render(request, "run.html", {"run": view, "timeline": timeline, "title": f"Run {run_id}"})

    @router.get("/deployments", response_class=HTMLResponse)
    def deployments_page(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
        check_read(settings, request)
        listed = reading.deployments(settings, limit=limit)
        active = next((v.deployment for v in listed if v.deployment.state == "active"), None)
        context = {"deployments": listed, "active": active, "title": "Deployments"}
        return render(request, "deployments.html", context)

    @router.get("/lessons", response_class=HTMLResponse)
    def lessons_page(
        request: Request,
        q: Annotated[str | None, Query(max_length=500)] = None,
        strategy: Annotated[str | None, Query(max_length=100)] = None,
    ) -> Response:
        check_read(settings, request)
        query = (q or "").strip() or None  # an empty search box lists the newest
        found = reading.lessons(settings, query=query, strategy=strategy or None, limit=20)
        context = {"lessons": found, "q": q or "", "strategy": strategy or "", "title": "Lessons"}
        return render(request, "lessons.html", context)

    # -- logging in ---------------------------------------------------------------------
    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:
        context = {"next": _local_path(next, "/"), "error": None, "title": "Log in"}
        return render(request, "login.html", context)

    @router.post("/login", response_class=HTMLResponse)
    def login(
        request: Request,
        token: Annotated[str, Form(max_length=1000)],
        next: Annotated[str, Form(max_length=1000)] = "/",
    ) -> Response:
        target = _local_path(next, "/")
        secret = settings.web.token.get_secret_value() if settings.web.token else ""
        if not secret:
            error, status = "No token is configured: set SORTE_WEB__TOKEN to allow actions from the web.", 403
        elif not token_matches(settings, token):
            error, status = "Wrong token.", 401
            client = request.client.host if request.client else None
            audit(settings.data_dir, "web:anonymous", "login", False, status=401, reason="wrong token", client=client)
        else:
            response = done("Logged in: the action buttons work now.", True, target)
            response.set_cookie(
                COOKIE, session_value(secret), httponly=True, samesite="strict", path="/", max_age=12 * 3600
            )
            return response
        return render(request, "login.html", {"next": target, "error": error, "title": "Log in"}, status)

    @router.post("/logout")
    def logout() -> Response:
        response = done("Logged out.", True, "/")
        response.delete_cookie(COOKIE, path="/")
        return response

    # -- actions ------------------------------------------------------------------------
    @router.post("/runs/{run_id}/approve")
    async def approve(
        request: Request,
        run_id: Annotated[str, PathParam(pattern=RUN_ID)],
        comment: Annotated[str, Form(max_length=MAX_REASON)] = "",
    ) -> Response:
        who = check_action_session(settings, request)
        reading.run(settings, run_id)
        view = await actions.approve(settings, who, run_id, comment, llm=llm)
        message = f"Run {run_id} approved: it is {view.status} ({view.outcome or 'no outcome yet'})."
        return done(message, True, f"/runs/{run_id}")

    @router.post("/runs/{run_id}/reject")
    async def reject(
        request: Request,
        run_id: Annotated[str, PathParam(pattern=RUN_ID)],
        comment: Annotated[str, Form(max_length=MAX_REASON)] = "",
    ) -> Response:
        who = check_action_session(settings, request)
        reading.run(settings, run_id)
        view = await actions.reject(settings, who, run_id, comment, llm=llm)
        message = f"Run {run_id} rejected: it is {view.status} ({view.outcome or 'no outcome yet'})."
        return done(message, True, f"/runs/{run_id}")

    @router.post("/rollback")
    async def rollback(
        request: Request,
        to: Annotated[str, Form(max_length=20)] = "",
        reason: Annotated[str, Form(max_length=MAX_REASON)] = "",
    ) -> Response:
        who = check_action_session(settings, request)
        to = to.strip()
        if to and not re.fullmatch(r"[0-9]{1,18}", to):  # str.isdigit() would take "²" and "١"
            raise SorteError(f"deployment id must be a positive number, got {to!r}")
        target = int(to) if to else None  # an empty field: the previous deployment
        result = await actions.rollback(settings, who, to=target, reason=reason)
        return done(result, True, "/deployments")

    @router.post("/pause")
    def pause(request: Request, next: Annotated[str, Form(max_length=1000)] = "/") -> Response:
        return done(actions.pause(settings, check_action_session(settings, request)), True, _local_path(next, "/"))

    @router.post("/resume")
    def resume(request: Request, next: Annotated[str, Form(max_length=1000)] = "/") -> Response:
        return done(actions.resume(settings, check_action_session(settings, request)), True, _local_path(next, "/"))

    return router
