"""Run the web app inside the caller's event loop (``sorte up`` runs it next to the commander)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from sorte.config import Settings
from sorte.errors import SorteError
from sorte.web.app import create_app
from sorte.web.edges import allowed_hosts

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals alone: the process that embeds it owns them."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn releases call this instead
        return None


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    llm: Any = None,
    ready: Callable[[int], None] | None = None,
) -> None:
    """Serve the status page and API on ``settings.web.host:port`` until ``stop`` is set.

    ``ready(port)`` is called with the bound port once the server listens (port 0 picks a free
    one). Raises SorteError when the server cannot start (the port is taken, say)."""
    if not allowed_hosts(settings.web):
        log.warning(
            "web: %s is a wildcard bind and web.allowed_hosts is empty, so every request will be refused (400); "
            "set SORTE_WEB__ALLOWED_HOSTS='[\"your.host.name\"]'",
            settings.web.host,
        )
    config = uvicorn.Config(
        create_app(settings, llm=llm),
        host=settings.web.host,
        port=settings.web.port,
        log_config=None,  # keep the embedding process's logging as it is
        access_log=False,  # request lines would be noise next to the trading log
        lifespan="off",
    )
    server = _Server(config)

    async def run() -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind: turn that into an error
            raise SorteError(
                f"the status page could not listen on {settings.web.host}:{settings.web.port} (is the port taken?)"
            ) from exc

    task = asyncio.create_task(run(), name="sorte-web")
    stopping = asyncio.create_task(stop.wait(), name="sorte-web-stop")
    try:
        while not server.started and not task.done() and not stop.is_set():
            await asyncio.sleep(0.02)  # uvicorn has no startup event to await
        if server.started and ready is not None:
            ready(server.servers[0].sockets[0].getsockname()[1])
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        await task  # re-raises a start-up failure
