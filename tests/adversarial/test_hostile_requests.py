"""Hostile input at the front-ends: HTTP to the status page and its API, messages and button
presses to the Telegram bot, and markup in what the CLI echoes.

Every case asserts the refusal; when the input tried an action, exactly one audit line for it;
that nothing changed (no pause, no decision, no deployment); and that the canary (the web and
Telegram tokens here, and every secret variable of the environment) appears in no response,
message, log or file the run left behind."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fake_telegram_api import FakeTelegram
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from typer.testing import CliRunner

from commander.status import commander_dir
from sorte.agent import journal
from sorte.agent.views import RunView
from sorte.config import Settings
from sorte.web import create_app
from tests.adversarial.canary import CANARY, assert_no_canary, set_canary
from tests.telegram.telegram_harness import OPERATOR, STRANGER, VIEWER, RunningBot, bot_settings, wait_for
from tests.web.web_env import RUN_ID, StubLLM, waiting_run_record, with_web

BEARER = {"Authorization": f"Bearer {CANARY}"}
ACTION_PATHS = ["/api/v1/pause", "/api/v1/resume", "/api/v1/rollback", f"/api/v1/runs/{RUN_ID}/approve"]
PAGE_ACTIONS = ["/pause", "/resume", "/rollback", f"/runs/{RUN_ID}/approve", f"/runs/{RUN_ID}/reject"]


# -- shared checks ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def canary(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """After ``settings`` (which clears SORTE_* variables), so the canary stays in the environment."""
    return set_canary(monkeypatch)


@pytest.fixture()
def base(settings: Settings, canary: str) -> Settings:
    """Settings read with the canary in the environment: the exchange and GitHub secrets hold it too."""
    read = Settings(data_dir=settings.data_dir)
    assert read.exchange.api_key is not None and read.exchange.api_key.get_secret_value() == canary
    return read


@pytest.fixture()
def web(base: Settings) -> Settings:
    """The status page with the canary as its token and a run waiting for approval."""
    live = with_web(base, token=CANARY)
    waiting_run_record(live)
    return live


def audit_lines(settings: Settings) -> list[dict[str, Any]]:
    path = settings.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def state(settings: Settings) -> dict[str, Any]:
    """What a refused action must leave as it was: pause switch, the waiting run, deployments."""
    control = settings.data_dir / "control.json"
    run = journal.load_view(settings.data_dir, RUN_ID)
    return {
        "control": control.read_text() if control.exists() else None,
        "run": run.model_dump() if run is not None else None,
        "deployments": commander_dir(settings.data_dir).exists(),
    }


def assert_refused_once(settings: Settings, before: int, action: str | None) -> None:
    """Exactly one new audit line, a refusal of ``action``; none at all for a read."""
    new = audit_lines(settings)[before:]
    if action is None:
        assert new == [], f"a refused read is no action: {new}"
        return
    assert [(a["action"], a["ok"]) for a in new] == [(action, False)], new
    assert not {"authorization", "headers", "body", "token", "cookie"} & set(new[0]), new[0]
    assert_no_canary(json.dumps(new[0]))


@dataclass
class Raw:
    """A response from a raw ASGI call, and how many body chunks the app pulled."""

    status: int
    headers: dict[str, str]
    body: bytes
    chunks_read: int = 0
    all_headers: list[tuple[str, str]] = field(default_factory=list)


def raw(
    app: FastAPI,
    method: str,
    path: str,
    headers: Iterable[tuple[str, str]] = (),
    chunks: Iterable[bytes] = (),
    query: bytes = b"",
) -> Raw:
    """Call the ASGI app directly: headers and paths exactly as given (no client normalises them),
    and a body streamed chunk by chunk with no Content-Length."""
    pulled = 0
    body_iter: Iterator[bytes] = iter(chunks)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(body_iter, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": query,
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Raw(start["status"], dict(pairs), body, pulled, pairs)


def assert_clean_error(status: int, body: bytes, expected: int | tuple[int, ...], *, json_body: bool = True) -> None:
    wanted = expected if isinstance(expected, tuple) else (expected,)
    assert status in wanted, (status, body[:300])
    assert b"Traceback" not in body and b"internal error" not in body
    if json_body:
        detail = json.loads(body)["detail"]
        assert detail, "a refusal says why"
    assert_no_canary(body)


def app_for(settings: Settings) -> FastAPI:
    return create_app(settings, llm=StubLLM())


# -- HTTP: bodies over the limit ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "headers", "action"),
    [
        ("/api/v1/rollback", BEARER, "rollback"),
        (f"/api/v1/runs/{RUN_ID}/approve", BEARER, "approve"),
        (f"/api/v1/runs/{RUN_ID}/reject", {}, "reject"),  # no token either: refused unread all the same
        ("/api/v1/pause", {"Authorization": "Bearer wrong"}, "pause"),
        ("/login", {}, None),
    ],
)
def test_a_body_over_the_limit_by_content_length_is_refused_unread(
    web: Settings, path: str, headers: dict, action: str | None
) -> None:
    before, was = len(audit_lines(web)), state(web)
    body = b'{"reason": "' + b"x" * (web.web.max_body_bytes + 10) + b'"}'
    raw_headers = [("host", "testserver"), ("content-length", str(len(body))), *headers.items()]
    # the app is handed an empty stream: a 413 that needed the body would hang or fail, not pass
    r = raw(app_for(web), "POST", path, raw_headers, chunks=[body])
    assert_clean_error(r.status, r.body, 413, json_body=path.startswith("/api/"))
    assert r.chunks_read == 0, "refused from the header alone"
    assert_refused_once(web, before, action)
    assert state(web) == was
    assert_no_canary(web.data_dir)


@pytest.mark.parametrize("declared", ["300000000", "99999999999999999999999", "-1", "12abc", "1e6", " "])
def test_a_lying_or_malformed_content_length_is_refused(web: Settings, declared: str) -> None:
    before, was = len(audit_lines(web)), state(web)
    headers = [("host", "testserver"), ("content-length", declared), *BEARER.items()]
    r = raw(app_for(web), "POST", "/api/v1/rollback", headers, chunks=[b"{}"])
    assert_clean_error(r.status, r.body, (400, 413))
    assert r.chunks_read == 0
    assert_refused_once(web, before, "rollback")
    assert state(web) == was


@pytest.mark.parametrize("path", ["/api/v1/rollback", f"/api/v1/runs/{RUN_ID}/approve", "/login", "/rollback"])
def test_a_streamed_body_is_cut_off_at_the_limit(web: Settings, path: str) -> None:
    """No Content-Length (chunked): the app pulls chunks until the limit, then the stream stops."""
    chunk = b" " * 16384
    endless = (chunk for _ in range(20000))  # 320 MB if anyone read it all
    before, was = len(audit_lines(web)), state(web)
    headers = [("host", "testserver"), ("transfer-encoding", "chunked"), *BEARER.items()]
    headers.append(("content-type", "application/x-www-form-urlencoded" if "/api/" not in path else "application/json"))
    if not path.startswith("/api/"):
        from sorte.web.auth import COOKIE, session_value

        headers.append(("cookie", f"{COOKIE}={session_value(CANARY)}"))
    r = raw(app_for(web), "POST", path, headers, chunks=endless)
    assert_clean_error(r.status, r.body, 413, json_body=path.startswith("/api/"))
    assert r.chunks_read <= web.web.max_body_bytes // len(chunk) + 1, "read past the limit"
    assert_refused_once(web, before, None if path == "/login" else path.rsplit("/", 1)[-1])
    assert state(web) == was


# -- HTTP: actions without the right credential ----------------------------------------------------------
WRONG_CREDENTIALS = [
    {},
    {"Authorization": "Bearer not-the-token"},
    {"Authorization": f"Basic {CANARY}"},
    {"Authorization": f"Bearer {CANARY}x"},
    {"Authorization": f"Bearer {CANARY[:-1]}"},
    {"Authorization": "Bearer "},
    {"Authorization": f"bearer{CANARY}"},
    {"Cookie": "sorte_session=" + "0" * 64},
]


@pytest.mark.parametrize("path", ACTION_PATHS)
@pytest.mark.parametrize("headers", WRONG_CREDENTIALS, ids=range(len(WRONG_CREDENTIALS)))
def test_api_actions_without_the_token_are_refused_and_audited(web: Settings, path: str, headers: dict) -> None:
    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        r = c.post(path, headers=headers, json={"reason": CANARY})  # the body is never read, nor echoed
    assert_clean_error(r.status_code, r.content, 401)
    assert r.headers.get("www-authenticate") == "Bearer"
    assert_refused_once(web, before, path.rsplit("/", 1)[-1])
    assert CANARY not in json.dumps(audit_lines(web))
    assert state(web) == was


def test_the_token_in_the_query_or_a_session_cookie_does_not_act_on_the_api(web: Settings) -> None:
    from sorte.web.auth import COOKIE, session_value

    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        c.cookies.set(COOKIE, session_value(CANARY))  # a cross-site request carries the cookie, never a header
        r1 = c.post("/api/v1/pause", params={"token": CANARY})
        r2 = c.post("/api/v1/pause", params={"access_token": CANARY})
    for r in (r1, r2):
        assert_clean_error(r.status_code, r.content, 401)
    assert [a["action"] for a in audit_lines(web)[before:]] == ["pause", "pause"]
    assert state(web) == was


@pytest.mark.parametrize("path", PAGE_ACTIONS)
def test_page_actions_without_a_session_are_refused_and_audited(web: Settings, path: str) -> None:
    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        c.cookies.set("sorte_session", "forged")
        r = c.post(path, headers=BEARER, data={"to": "1", "next": "/"}, follow_redirects=False)
    assert_clean_error(r.status_code, r.content, 401, json_body=False)
    assert_refused_once(web, before, path.rsplit("/", 1)[-1])
    assert state(web) == was


def test_login_with_a_wrong_token_is_audited_without_the_guess(web: Settings) -> None:
    with TestClient(app_for(web)) as c:
        r = c.post("/login", data={"token": "guess-" + CANARY[::-1], "next": "/"})
    assert r.status_code == 401 and "Wrong token" in r.text
    [line] = audit_lines(web)
    assert (line["action"], line["ok"]) == ("login", False) and "guess" not in json.dumps(line)
    assert_no_canary(r.content)


# -- HTTP: Host header -------------------------------------------------------------------------------
BAD_HOSTS = [
    "evil.example",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "testserver.evil.example",
    "testserver:notaport",
    "[::1",
    "",
    "test server",
    "testserver\r\nx-injected: 1",
]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=range(len(BAD_HOSTS)))
def test_a_foreign_host_header_is_refused(web: Settings, host: str) -> None:
    before, was = len(audit_lines(web)), state(web)
    app = app_for(web)
    read = raw(app, "GET", "/api/v1/overview", [("host", host)])
    act = raw(app, "POST", "/api/v1/pause", [("host", host), *BEARER.items()])
    for r in (read, act):
        assert_clean_error(r.status, r.body, 400)
        assert "x-injected" not in r.headers
    assert_refused_once(web, before, "pause")
    assert state(web) == was


def test_missing_or_repeated_host_headers_are_refused(web: Settings) -> None:
    app = app_for(web)
    for headers in ([], [("host", "testserver"), ("host", "evil.example")]):
        r = raw(app, "POST", "/api/v1/pause", [*headers, *BEARER.items()])
        assert_clean_error(r.status, r.body, 400)
    assert state(web)["control"] is None


def test_hosts_allowed_follow_the_bind(base: Settings) -> None:
    """Loopback names on a loopback bind; on a wildcard bind only the names configured."""
    loopback = app_for(with_web(base, token=CANARY, allowed_hosts=[]))
    for host in ("localhost:8090", "127.0.0.1", "[::1]:8090", "LOCALHOST"):
        assert raw(loopback, "GET", "/healthz", [("host", host)]).status == 200, host
    assert raw(loopback, "GET", "/healthz", [("host", "testserver")]).status == 400, "tests name it, prod never"
    wildcard = app_for(with_web(base, token=CANARY, host="0.0.0.0", allowed_hosts=[]))  # noqa: S104
    refused = raw(wildcard, "GET", "/healthz", [("host", "localhost")])
    assert refused.status == 400 and b"web.allowed_hosts" in refused.body
    named = app_for(with_web(base, token=CANARY, host="0.0.0.0", allowed_hosts=["sorte.example"]))  # noqa: S104
    assert raw(named, "GET", "/healthz", [("host", "sorte.example:443")]).status == 200


# -- HTTP: types in action bodies ---------------------------------------------------------------------
NOT_A_DEPLOYMENT_ID = st.one_of(
    st.booleans(),
    st.text(max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(max_value=0),
    st.integers(min_value=2**62 + 1, max_value=2**70),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(to=NOT_A_DEPLOYMENT_ID)
def test_rollback_to_anything_but_a_deployment_id_is_a_422(web: Settings, to: Any) -> None:
    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        r = c.post("/api/v1/rollback", headers=BEARER, json={"to": to})
    assert_clean_error(r.status_code, r.content, 422)
    assert_refused_once(web, before, "rollback")
    assert state(web) == was


@hsettings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k != "comment"), st.none(), min_size=1),
        st.fixed_dictionaries({"comment": st.one_of(st.integers(), st.booleans(), st.lists(st.text(max_size=3)))}),
        st.fixed_dictionaries({"comment": st.text(min_size=301, max_size=400)}),
        st.lists(st.integers(), max_size=3),
        st.text(max_size=10),
        st.integers(),
    )
)
def test_a_decision_body_of_the_wrong_shape_is_a_422_and_decides_nothing(web: Settings, body: Any) -> None:
    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        r = c.post(f"/api/v1/runs/{RUN_ID}/approve", headers=BEARER, json=body)
    assert_clean_error(r.status_code, r.content, 422)
    assert_refused_once(web, before, "approve")
    assert state(web) == was


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"to": 1', "application/json"),  # cut short
        (b'{"to": 1, "to": 2, "reason": ' + b'"' + b"\xff\xfe" + b'"}', "application/json"),  # not UTF-8
        (b"[" * 30000 + b"]" * 30000, "application/json"),  # deep nesting within the size limit
        (b"to=1&reason=x", "application/x-www-form-urlencoded"),
        (b"\x00\x01\x02", "application/octet-stream"),
        (b'{"to": 1e400}', "application/json"),
        (b'{"to": NaN}', "application/json"),
        (b'{"extra": 1}', "application/json"),
        (b'{"reason": "' + b"r" * 301 + b'"}', "application/json"),
    ],
    ids=["truncated", "not-utf8", "deep", "form", "binary", "huge-float", "nan", "extra-key", "long-reason"],
)
def test_malformed_rollback_bodies_get_a_clean_4xx(web: Settings, content: bytes, content_type: str) -> None:
    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        r = c.post("/api/v1/rollback", headers={**BEARER, "Content-Type": content_type}, content=content)
    assert_clean_error(r.status_code, r.content, (400, 422))
    assert_refused_once(web, before, "rollback")
    assert state(web) == was


def test_page_rollback_takes_only_ascii_digits(web: Settings) -> None:
    from sorte.web.auth import COOKIE, session_value

    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        c.cookies.set(COOKIE, session_value(CANARY))
        for to in ("²", "١٢", "-1", "1.5", "0x10"):
            r = c.post("/rollback", data={"to": to, "reason": "x"}, follow_redirects=False)
            assert_clean_error(r.status_code, r.content, 400, json_body=False)
    assert [(a["action"], a["ok"]) for a in audit_lines(web)[before:]] == [("rollback", False)] * 5
    assert state(web) == was


# -- HTTP: ids, headers, URLs, methods ------------------------------------------------------------------
TRAVERSALS = ["..", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "a\x00b", "x" * 300, "%2e%2e", "-leading", ".hidden"]


@pytest.mark.parametrize("run_id", TRAVERSALS, ids=range(len(TRAVERSALS)))
def test_path_traversal_in_run_ids_reads_and_decides_nothing(web: Settings, run_id: str) -> None:
    before, was = len(audit_lines(web)), state(web)
    app = app_for(web)
    read = raw(app, "GET", f"/api/v1/runs/{run_id}", [("host", "testserver")])
    act = raw(app, "POST", f"/api/v1/runs/{run_id}/approve", [("host", "testserver"), *BEARER.items()])
    for r in (read, act):
        assert_clean_error(r.status, r.body, (404, 422))
        assert b"root:" not in r.body
    assert_refused_once(web, before, "approve")
    assert state(web) == was


def test_header_injection_is_not_reflected(web: Settings) -> None:
    app = app_for(web)
    r = raw(app, "POST", "/api/v1/pause", [("host", "testserver"), ("authorization", "Bearer x\r\nX-Injected: 1")])
    assert_clean_error(r.status, r.body, 401)
    assert "x-injected" not in r.headers
    with TestClient(app) as c:
        login = c.post("/login", data={"token": CANARY, "next": "/\r\nSet-Cookie: pwned=1"}, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/"
        assert "pwned" not in str(login.headers)
        closed = app_for(with_web(web, token=CANARY, open_read=False))
        page = raw(closed, "GET", "/runs/%0d%0aSet-Cookie:x", [("host", "testserver")])
        assert page.status in (303, 404) and all("\r" not in v and "\n" not in v for _, v in page.all_headers)
    assert state(web)["control"] is None


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/lessons", b"q=" + b"a" * 10000),
        ("/api/v1/trades", b"limit=" + b"9" * 9000),
        ("/api/v1/runs", b"&".join([b"limit=1"] * 2000)),
        ("/api/v1/trades", b"limit=99999999999999999999999"),
        ("/api/v1/equity", b"points=-1"),
        ("/api/v1/runs", b"limit=%00"),
        ("/lessons", b"q=" + b"%00" * 5000),
    ],
    ids=["long-q", "long-number", "many-params", "huge-limit", "negative", "nul-limit", "page-long-q"],
)
def test_huge_or_hostile_query_strings_get_a_clean_4xx(web: Settings, path: str, query: bytes) -> None:
    r = raw(app_for(web), "GET", path, [("host", "testserver")], query=query)
    assert_clean_error(r.status, r.body, (400, 404, 414, 422), json_body=path.startswith("/api/"))
    assert audit_lines(web) == [] and state(web)["control"] is None


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("GET", "/api/v1/pause", None),
        ("GET", "/pause", None),
        ("HEAD", "/api/v1/rollback", None),
        ("PUT", "/api/v1/rollback", "rollback"),
        ("DELETE", f"/api/v1/runs/{RUN_ID}/approve", "approve"),
        ("PATCH", "/api/v1/pause", "pause"),
        ("POST", "/api/v1/overview", None),
        ("OPTIONS", "/api/v1/resume", None),
    ],
)
def test_the_wrong_method_on_an_action_changes_nothing(web: Settings, method: str, path: str, action: str) -> None:
    before, was = len(audit_lines(web)), state(web)
    with TestClient(app_for(web)) as c:
        r = c.request(method, path, headers=BEARER)
    assert r.status_code == 405, r.text
    assert_no_canary(r.content)
    assert_refused_once(web, before, action)
    assert state(web) == was


def test_an_allowed_action_still_works_and_is_audited_once(web: Settings) -> None:
    """The control case: the same client, with everything right, does act."""
    with TestClient(app_for(web)) as c:
        r = c.post("/api/v1/pause", headers=BEARER)
    assert r.status_code == 200 and json.loads(state(web)["control"])["paused"] is True
    assert [(a["action"], a["ok"]) for a in audit_lines(web)] == [("pause", True)]
    assert_no_canary(r.content, web.data_dir)


# -- Telegram ----------------------------------------------------------------------------------------
ALLOWED_TAGS = {"b", "i", "u", "s", "code", "pre", "a"}


def assert_safe_html(text: str) -> None:
    """Only the bot's own tags; everything a user wrote arrives escaped."""
    for tag in re.findall(r"</?([A-Za-z][A-Za-z0-9-]*)", text):
        assert tag.lower() in ALLOWED_TAGS, f"unescaped <{tag}> in {text!r}"
    for link in re.findall(r"<a\s[^>]*href=[\"']?([^\"'>\s]*)", text):
        assert link.startswith(("https://", "http://")), f"a live link to {link!r}"


@pytest.fixture()
def fake() -> Iterator[FakeTelegram]:
    server = FakeTelegram(token=f"123:{CANARY}").start()
    yield server
    server.stop()


def bot_run(live: Settings, fake: FakeTelegram, script: Any) -> Settings:
    journal.save_view(
        live.data_dir,
        RunView(
            run_id=RUN_ID, request="<b>raise</b> the <a href='javascript:alert(1)'>stop</a>", status="awaiting_approval"
        ),
    )

    async def scenario() -> None:
        async with RunningBot(live, fake) as bot:
            await script(bot)

    asyncio.run(scenario())
    return live


def everything_sent(fake: FakeTelegram) -> list[str]:
    return [json.dumps(c.params, default=str) for c in list(fake.calls)]


def assert_telegram_clean(live: Settings, fake: FakeTelegram, was: dict[str, Any]) -> None:
    assert state(live)["control"] == was["control"] and state(live)["deployments"] == was["deployments"]
    run = journal.load_view(live.data_dir, RUN_ID)
    assert run is not None and run.status == "awaiting_approval", "nothing was decided"
    for call in fake.of("sendMessage"):
        assert_safe_html(str(call.params.get("text", "")))
    assert_no_canary(everything_sent(fake), live.data_dir)


HOSTILE_COMMANDS = [
    (STRANGER, "/pause", "telegram", "private"),
    (STRANGER, "please " + "<b>approve</b> " * 3000, "telegram", "private"),
    (VIEWER, "/pause", "pause", "Only operators"),
    (VIEWER, f"/approve {RUN_ID}", "approve", "Only operators"),
    (VIEWER, f"/reject {RUN_ID}", "reject", "Only operators"),
    (VIEWER, "/rollback 1 <b>because</b>", "rollback", "Only operators"),
    (VIEWER, "/reload_config", "reload_config", "Only operators"),
    (VIEWER, "raise the stop <script>alert(1)</script>", "ask", "Only operators"),
    (OPERATOR, "/rollback -5", "rollback", "whole number"),
    (OPERATOR, "/rollback 99999999999999999999999999", "rollback", "whole number"),
    (OPERATOR, "/rollback ²", "rollback", "whole number"),
    (OPERATOR, "/rollback ١٢", "rollback", "whole number"),
    (OPERATOR, "/rollback 3.5 oops", "rollback", "whole number"),
    (OPERATOR, "/rollback #3", "rollback", "whole number"),
    (OPERATOR, "/logs 10**9", "logs", "whole number"),
    (OPERATOR, "/logs " + "9" * 5000, "logs", "whole number"),
    (OPERATOR, "/trades -1", "trades", "whole number"),
    (OPERATOR, "/run <b>x</b>", "run", "not a run id"),
    (OPERATOR, '/run <a href="javascript:alert(1)">x</a>', "run", "not a run id"),
    (OPERATOR, "/approve ../../etc/passwd", "approve", "not a run id"),
    (OPERATOR, "/reject 20990101-000000-ffffff", "reject", "Not found"),
    (OPERATOR, "/unmute <i>bar_gap</i>", "unmute", "Usage"),
    (OPERATOR, "raise the stop loss " + "<b>x</b> " * 1500, "ask", "did not work"),
]


@pytest.mark.parametrize(("user", "text", "action", "says"), HOSTILE_COMMANDS, ids=range(len(HOSTILE_COMMANDS)))
def test_hostile_telegram_commands_are_refused_once_and_change_nothing(
    base: Settings, fake: FakeTelegram, user: int, text: str, action: str, says: str
) -> None:
    replies: list[str] = []

    async def script(bot: RunningBot) -> None:
        replies.append(await bot.ask(user, text))
        if action == "ask":  # the refusal of a request edits the "working" message
            await wait_for(lambda: says in fake.messages(user)[-1]["text"], "the refusal")
            replies.append(fake.messages(user)[-1]["text"])

    was = {"control": None, "deployments": False}
    live = bot_run(bot_settings(base, fake), fake, script)
    assert says in replies[-1], replies
    assert_safe_html(replies[-1])
    refused = [(a["action"], a["ok"]) for a in audit_lines(live)]
    assert refused == [(action, False)], refused
    assert_telegram_clean(live, fake, was)


def test_a_stranger_in_an_unknown_group_is_refused(base: Settings, fake: FakeTelegram) -> None:
    live = bot_settings(base, fake)
    replies: list[str] = []

    async def script(bot: RunningBot) -> None:
        replies.append(await bot.ask(STRANGER, f"/approve {RUN_ID}", chat_id=-777))

    bot_run(live, fake, script)
    assert "private" in replies[0]
    assert [(a["action"], a["ok"], a["chat"]) for a in audit_lines(live)] == [("telegram", False, -777)]
    assert_telegram_clean(live, fake, {"control": None, "deployments": False})


def test_what_users_wrote_comes_back_escaped(base: Settings, fake: FakeTelegram) -> None:
    """The stored request holds tags and a javascript: link; /run and /runs show them as text."""
    live = bot_settings(base, fake)
    replies: list[str] = []

    async def script(bot: RunningBot) -> None:
        replies.append(await bot.ask(OPERATOR, f"/run {RUN_ID}"))
        replies.append(await bot.ask(OPERATOR, "/runs"))

    bot_run(live, fake, script)
    assert all("&lt;b&gt;raise&lt;/b&gt;" in r for r in replies), replies
    assert "&amp;lt;" not in replies[0], "escaped once, not twice"
    assert audit_lines(live) == []  # reads are not actions
    assert_telegram_clean(live, fake, {"control": None, "deployments": False})


PRESSES = [
    (STRANGER, f"approve:{RUN_ID}", "telegram"),
    (VIEWER, f"approve:{RUN_ID}", "approve"),
    (VIEWER, f"reject:{RUN_ID}", "reject"),
    (OPERATOR, "approve:../../etc/passwd", "button"),
    (OPERATOR, "approve:", "button"),
    (OPERATOR, "deploy:1", "button"),
    (OPERATOR, f"approve:{RUN_ID}:extra", "button"),
    (OPERATOR, "approve:" + "a" * 5000, "button"),
    (OPERATOR, "", "button"),
    (OPERATOR, "approve:20990101-000000-ffffff", "approve"),
]


@pytest.mark.parametrize(("user", "data", "action"), PRESSES, ids=range(len(PRESSES)))
def test_forged_button_presses_decide_nothing(
    base: Settings, fake: FakeTelegram, user: int, data: str, action: str
) -> None:
    live = bot_settings(base, fake)

    async def script(bot: RunningBot) -> None:
        message = {"message_id": 99, "date": 0, "chat": {"id": user, "type": "private"}, "text": "approve?"}
        fake.press(user, message, data)
        await bot.handled()
        await wait_for(lambda: audit_lines(live), "the audit line")
        await wait_for(lambda: fake.of("answerCallbackQuery"), "the answer to the press")

    bot_run(live, fake, script)
    assert [(a["action"], a["ok"]) for a in audit_lines(live)] == [(action, False)]
    assert_telegram_clean(live, fake, {"control": None, "deployments": False})


# -- CLI ---------------------------------------------------------------------------------------------
MARKUP = ["[bold red]x[/]", "[link=https://evil.example]click[/link]", "[/]", "[red]r[/red]\\"]


@pytest.mark.parametrize("text", MARKUP, ids=range(len(MARKUP)))
@pytest.mark.parametrize(
    "argv",
    [
        ["runs", "show", "{}"],
        ["status", "--config", "{}.yaml"],
        ["validate", "main", "--format", "{}"],
        ["validate", "main", "--sandbox", "{}"],
    ],
    ids=["run-id", "config-path", "format", "sandbox"],
)
def test_cli_errors_print_markup_as_typed(base: Settings, text: str, argv: list[str]) -> None:
    from sorte.cli.main import app

    args = [a.replace("{}", text) for a in argv]
    result = CliRunner().invoke(app, args, env={"SORTE_DATA_DIR": str(base.data_dir)})
    assert result.exit_code == 2, result.output
    flat = result.output.replace("\n", "")
    typed = text.rstrip("\\").replace("//", "/") if "--config" in args else text.rstrip("\\")  # a path loses "//"
    assert "error:" in flat and typed in flat, flat
    assert "Traceback" not in flat
    assert_no_canary(result.output)
