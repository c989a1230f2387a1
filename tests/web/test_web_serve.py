"""``serve`` inside the caller's event loop (port 0, ready callback, stop event, a taken port),
and the server-side equity chart."""

from __future__ import annotations

import asyncio
import signal
import socket
import time

import httpx
import pytest

from sorte.config import Settings
from sorte.errors import SorteError
from sorte.service import EquityPoint
from sorte.web import serve
from sorte.web.charts import equity_svg
from tests.web.web_env import StubLLM, with_web


def test_serve_listens_on_a_free_port_answers_and_stops_on_the_event(settings: Settings) -> None:
    web = with_web(settings, port=0)

    async def main() -> tuple[int, int, str]:
        before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}  # asyncio.run's own
        stop = asyncio.Event()
        ports: list[int] = []
        task = asyncio.create_task(serve(web, stop, llm=StubLLM(), ready=ports.append))
        while not ports and not task.done():
            await asyncio.sleep(0.02)
        assert ports, "ready was never called"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}") as http:
            status = (await http.get("/healthz")).status_code
            page = (await http.get("/")).text
        assert {sig: signal.getsignal(sig) for sig in before} == before  # the embedding process keeps its signals
        stop.set()
        await asyncio.wait_for(task, 10)
        return ports[0], status, page

    port, status, page = asyncio.run(main())
    assert port > 0 and status == 200 and "Overview" in page
    with socket.socket() as probe:  # the port was given back
        probe.bind(("127.0.0.1", port))


def test_serve_on_a_taken_port_raises_a_sorte_error(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        web = with_web(settings, port=taken.getsockname()[1])
        called: list[int] = []
        with pytest.raises(SorteError, match="could not listen"):
            asyncio.run(serve(web, asyncio.Event(), ready=called.append))
        assert called == []


def test_equity_chart_draws_every_point_and_the_starting_cash() -> None:
    now = time.time()
    points = [EquityPoint(step=i, at=now + i, equity=10_000 + 10 * i) for i in range(50)]
    svg = equity_svg(points, initial=10_000)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    polyline = svg.split('points="')[1].split('"')[0]
    coords = [tuple(map(float, pair.split(","))) for pair in polyline.split()]
    assert len(coords) == 50
    assert coords[0][0] < coords[-1][0] and coords[0][1] > coords[-1][1]  # rising equity goes up the page
    assert "stroke-dasharray" in svg and "#1a7f37" in svg  # baseline, green above it
    falling = equity_svg([EquityPoint(step=i, at=now, equity=100 - i) for i in range(3)], initial=100)
    assert "#cf222e" in falling
    flat = equity_svg([EquityPoint(step=i, at=now, equity=5.0) for i in range(3)])
    assert "nan" not in flat.lower()
    assert "<svg" not in equity_svg(points[:1])
