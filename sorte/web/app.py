"""The FastAPI application: the JSON API, the status page, /metrics, /healthz and /readyz."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from sorte import __version__
from sorte.config import Settings
from sorte.errors import SorteError
from sorte.service import Health, reading
from sorte.web.api import api_router
from sorte.web.auth import AuthError, check_read
from sorte.web.edges import REFUSAL, Edge
from sorte.web.errors import message_for, status_for
from sorte.web.metrics import WebMetrics
from sorte.web.pages import make_templates, pages_router

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/metrics", "/healthz", "/readyz"))


def create_app(settings: Settings, *, llm: Any = None) -> FastAPI:
    """The status page and API over ``settings``; ``llm`` is the model client approve/reject hand to the agent."""
    app = FastAPI(
        title="Sorte",
        version=__version__,
        description="Status page and JSON API of the Sorte trading agent. Actions need `Authorization: Bearer`.",
    )
    metrics = WebMetrics()
    templates = make_templates()
    app.state.settings = settings
    app.state.metrics = metrics
    app.include_router(api_router(settings, llm))
    app.include_router(pages_router(settings, templates, llm))
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    def error_page(request: Request, status: int, message: str) -> Response:
        request.scope[REFUSAL] = message  # what the edge writes to the audit log when this refused an action
        if _wants_json(request):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        if status == 401 and request.method == "GET":  # a page that needs the token: the login form says why
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        context = {"status": status, "message": message, "title": f"Error {status}", "logged_in": False}
        return templates.TemplateResponse(request, "error.html", context, status_code=status)

    @app.exception_handler(AuthError)
    async def on_auth(request: Request, exc: AuthError) -> Response:
        return error_page(request, exc.status, exc.message)

    @app.exception_handler(SorteError)
    async def on_sorte(request: Request, exc: SorteError) -> Response:
        return error_page(request, status_for(exc), message_for(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no page at {request.url.path}."
        return error_page(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())[:1000]
        if _wants_json(request):
            request.scope[REFUSAL] = problems
            return JSONResponse({"detail": plain_errors(exc.errors())}, status_code=422)
        # A malformed id in a page's URL is a page that does not exist, for a reader.
        is_path = any(e.get("loc", ("",))[0] == "path" for e in exc.errors())
        status = 404 if is_path else 422
        message = "No such page." if is_path else problems
        return error_page(request, status, message)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> Response:
        log.exception("web: unhandled error on %s %s", request.method, request.url.path)
        return error_page(request, 500, f"internal error ({type(exc).__name__}); the log has the details")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, bool]:
        return {"ok": True}  # the process answers: that is all liveness means

    @app.get("/readyz", response_model=Health, responses={503: {"model": Health}}, tags=["health"])
    def readyz() -> Response:
        health = reading.health(settings)
        return JSONResponse(health.model_dump(), status_code=200 if health.ready else 503)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["health"])
    def prometheus(request: Request) -> PlainTextResponse:
        check_read(settings, request)
        # The active slot's own metrics come from the snapshot it writes; the service layer has no public reader yet.
        slot = reading.slot_metrics(settings)
        text = metrics.text() + (slot if slot.endswith("\n") or not slot else slot + "\n")
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    # Added last, so they run first: the metrics count every request, the edge refuses before the app reads.
    app.add_middleware(Edge, settings=settings, error_page=error_page)
    app.middleware("http")(metrics.middleware)
    return app


def plain_errors(errors: Any) -> list[dict[str, Any]]:
    """Where and what, without the offending input: a 422 must not echo a body (or a token in it) back."""
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ][:20]
