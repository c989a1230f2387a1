"""The web app's own Prometheus metrics, in a registry of its own (the process-wide default one
may hold other components' metrics and would be exposed twice)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class WebMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sorte_web_requests",
            "HTTP requests answered by the status page and API",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sorte_web_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
        )

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status = 500  # what the client gets when the handler raises past every error handler
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = _route(request)
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


def _route(request: Request) -> str:
    """The route's template (/api/v1/runs/{run_id}), not the raw path: ids would make one series each."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
