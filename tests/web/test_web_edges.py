"""The edge in front of the app: Host names, action paths, and (slow) a real server on loopback
that refuses a 300 MB body without the process growing by it."""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sorte.config import Settings, WebSettings
from sorte.web import serve
from sorte.web.edges import action_of, allowed_hosts, host_name
from tests.web.web_env import BEARER, StubLLM, with_web

BIG = 300 * 1024 * 1024


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8090", "localhost"),
        ("127.0.0.1:80", "127.0.0.1"),
        ("[::1]:8090", "::1"),
        ("[::1]", "::1"),
        ("sorte.example", "sorte.example"),
        ("::1", None),  # an IPv6 literal needs its brackets
        ("[::1", None),
        ("host:port", None),
        ("host:123456", None),
        ("", None),
        ("a b", None),
        ("évil.example", None),
        ("x\r\ny", None),
    ],
)
def test_host_name(header: str, name: str | None) -> None:
    assert host_name(header) == name


def test_allowed_hosts_follow_the_bind() -> None:
    assert allowed_hosts(WebSettings()) == {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts(WebSettings(host="10.0.0.5")) == {"10.0.0.5"}
    assert allowed_hosts(WebSettings(host="0.0.0.0")) == set()  # noqa: S104 - a wildcard bind names nobody
    assert allowed_hosts(WebSettings(host="0.0.0.0", allowed_hosts=["Sorte.Example"])) == {"sorte.example"}  # noqa: S104


@pytest.mark.parametrize(
    ("method", "path", "action", "api"),
    [
        ("POST", "/api/v1/pause", "pause", True),
        ("PUT", "/api/v1/rollback", "rollback", True),
        ("POST", "/api/v1/runs/r1/approve", "approve", True),
        ("POST", "/api/v1/runs/../../x/reject", "reject", True),
        ("POST", "/resume", "resume", False),
        ("POST", "/runs/r1/approve", "approve", False),
        ("GET", "/api/v1/pause", None, None),
        ("POST", "/login", None, None),
        ("POST", "/api/v1/overview", None, None),
    ],
)
def test_action_of(method: str, path: str, action: str | None, api: bool | None) -> None:
    attempt = action_of(method, path)
    assert (attempt.action if attempt else None, attempt.api if attempt else None) == (action, api)


# -- a real server ------------------------------------------------------------------------------------
def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture()
def server(settings: Settings) -> Iterator[int]:
    """serve() on a free loopback port in a thread of its own; yields the port."""
    web = with_web(settings, port=0, allowed_hosts=[])
    ports: list[int] = []
    stop: list[asyncio.Event] = []
    loop = asyncio.new_event_loop()

    async def main() -> None:
        stop.append(asyncio.Event())
        await serve(web, stop[0], llm=StubLLM(), ready=ports.append)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ports and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ports, "the server did not start"
    yield ports[0]
    loop.call_soon_threadsafe(stop[0].set)
    thread.join(10)


def _post(port: int, head: str, chunks: int, chunk: bytes) -> tuple[bytes, int, int]:
    """Send ``head`` then up to ``chunks`` chunks until the server answers; returns the answer, the
    bytes sent and the largest resident size seen meanwhile."""
    sent, peak, answer = 0, _rss(), b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        for _ in range(chunks):
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except OSError:  # the server closed the connection on the refusal
                break
            sent += len(chunk)
            peak = max(peak, _rss())
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    return answer, sent, peak


@pytest.mark.slow
def test_a_300mb_body_does_not_grow_the_process(server: int) -> None:
    base = _rss()
    auth = BEARER["Authorization"]
    declared = f"POST /api/v1/rollback HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
    declared += f"Content-Type: application/json\r\nContent-Length: {BIG}\r\n\r\n"
    answer, _, peak = _post(server, declared, BIG // 65536, b" " * 65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert peak - base < 50 * 1024 * 1024, f"grew by {(peak - base) >> 20} MB"

    chunk = b" " * 65536
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    streamed = f"POST /api/v1/rollback HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
    streamed += "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer, sent, peak = _post(server, streamed, BIG // len(chunk), framed)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert peak - base < 50 * 1024 * 1024, f"grew by {(peak - base) >> 20} MB after {sent >> 20} MB sent"
