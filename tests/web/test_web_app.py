"""The status page and JSON API on an empty data directory and on hand-made agent records:
pages render, the API returns its models, every action checks the token, pause/resume reach the
control file, bad ids are 404s, and /metrics, /healthz, /readyz answer."""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from sorte.agent.views import RunView
from sorte.config import Settings
from sorte.runtime.control import read_control
from sorte.service import (
    AlertView,
    DeploymentView,
    EquityPoint,
    Health,
    LessonView,
    Overview,
    PositionView,
    StageStats,
    StrategyView,
    TradeView,
)
from sorte.web.auth import COOKIE
from tests.web.web_env import BEARER, RUN_ID, TOKEN, WRONG, client, logged_in, waiting_run_record, with_web


@pytest.fixture()
def web(settings: Settings) -> Settings:
    return with_web(settings)


def test_pages_render_on_an_empty_data_dir(web: Settings) -> None:
    c = client(web)
    expected = {
        "/": ["Overview", 'id="health" class="state stopped"', "No open positions.", "No equity curve yet"],
        "/runs": ["No agent runs yet."],
        "/deployments": ["Nothing has been deployed yet."],
        "/lessons": ["No lessons yet."],
        "/lessons?q=stop+loss": ["No lesson matches."],
        "/login": ['name="token"', "SORTE_WEB__TOKEN"],
    }
    for path, texts in expected.items():
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html")
        for text in texts:
            assert text in r.text, (path, text)
    assert "Roll back to previous" not in c.get("/deployments").text  # nothing is active


def test_api_reads_return_their_models_on_an_empty_data_dir(web: Settings) -> None:
    c = client(web)
    models = {
        "/api/v1/overview": Overview,
        "/api/v1/positions": list[PositionView],
        "/api/v1/trades?limit=5": list[TradeView],
        "/api/v1/equity?points=10": list[EquityPoint],
        "/api/v1/stages": list[StageStats],
        "/api/v1/strategies": list[StrategyView],
        "/api/v1/runs?limit=3": list[RunView],
        "/api/v1/deployments?limit=3": list[DeploymentView],
        "/api/v1/lessons?q=stop&limit=3": list[LessonView],
        "/api/v1/alerts?limit=3": list[AlertView],
    }
    for path, model in models.items():
        r = c.get(path)
        assert r.status_code == 200, (path, r.text)
        TypeAdapter(model).validate_python(r.json())
    overview = Overview.model_validate(c.get("/api/v1/overview").json())
    assert overview.health == "stopped" and overview.active is None and not overview.paused
    assert c.get("/api/v1/profit").json() is None
    assert c.get("/api/v1/logs?lines=5").json() == {"lines": []}
    names = {s["name"] for s in c.get("/api/v1/strategies").json()}
    assert "momentum" in names  # the project's own strategies directory


def test_bad_ids_and_bad_input(web: Settings) -> None:
    c = client(web)
    for path in ("/api/v1/runs/nope", "/api/v1/runs/nope/diff", "/api/v1/deployments/7"):
        r = c.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["detail"]
    for path in (
        "/api/v1/deployments/0",
        "/api/v1/deployments/-3",
        "/api/v1/trades?limit=0",
        "/api/v1/trades?limit=100000",
        "/api/v1/equity?points=1",
        "/api/v1/runs/..%2Fsecrets",
    ):
        assert c.get(path).status_code in (404, 422), path
    assert c.get("/api/v1/lessons?q=%20%20").status_code == 400  # SorteError: an empty query
    for path in ("/runs/nope", "/runs/bad%20id", "/no/such/page"):
        r = c.get(path)
        assert r.status_code == 404, (path, r.text)
        assert "Not found" in r.text and r.headers["content-type"].startswith("text/html")


ACTIONS = [
    ("/api/v1/pause", None),
    ("/api/v1/resume", None),
    ("/api/v1/rollback", {"reason": "test"}),
    (f"/api/v1/runs/{RUN_ID}/approve", {"comment": "ok"}),
    (f"/api/v1/runs/{RUN_ID}/reject", None),
]


@pytest.mark.parametrize(("path", "body"), ACTIONS, ids=[a[0].rsplit("/", 1)[-1] for a in ACTIONS])
def test_every_action_checks_the_token(web: Settings, path: str, body: dict | None) -> None:
    c = client(web)
    for headers in ({}, WRONG, {"Authorization": TOKEN}, {"Authorization": "Basic " + TOKEN}):
        r = c.post(path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert not (web.data_dir / "control.json").exists()  # a refused pause or resume wrote nothing
    r = c.post(path, json=body, headers=BEARER)
    assert r.status_code not in (401, 403), r.text
    # With no token configured at all, actions are refused with a hint on how to allow them.
    no_token = client(with_web(web, token=None))
    r = no_token.post(path, json=body, headers=BEARER)
    assert r.status_code == 403 and "SORTE_WEB__TOKEN" in r.json()["detail"]


def test_actions_on_an_empty_data_dir_answer_404_and_409(web: Settings) -> None:
    c = client(web)
    r = c.post("/api/v1/rollback", headers=BEARER)
    assert r.status_code == 409 and "nothing to roll back" in r.json()["detail"]
    r = c.post("/api/v1/rollback", json={"to": 0}, headers=BEARER)
    assert r.status_code == 422
    r = c.post("/api/v1/runs/nope/approve", headers=BEARER)
    assert r.status_code == 404


def test_pause_and_resume_write_the_control_file_and_show_on_the_overview(web: Settings) -> None:
    c = client(web)
    control = web.data_dir / "control.json"
    r = c.post("/api/v1/pause", headers=BEARER)
    assert r.status_code == 200 and r.json()["action"] == "pause" and r.json()["ok"]
    assert read_control(control)["paused"] is True
    assert c.get("/api/v1/overview").json()["paused"] is True
    page = c.get("/").text
    assert "new entries paused" in page and 'id="resume"' in page

    # The page's own button: refused before logging in, done after.
    r = c.post("/resume", data={"next": "/"})
    assert r.status_code == 401 and "log in with the token first" in r.text
    assert read_control(control)["paused"] is True
    logged_in(c)
    r = c.post("/resume", data={"next": "/"})
    assert r.status_code == 200 and str(r.url).endswith("/")
    assert 'id="flash"' in r.text and "new entries allowed again" in r.text
    assert read_control(control)["paused"] is False
    assert 'id="pause"' in r.text
    assert 'id="flash"' not in c.get("/").text  # the flash message shows once

    audit = [json.loads(line) for line in (web.data_dir / "audit.jsonl").read_text().splitlines()]
    # the press refused before logging in is audited too
    expected = [("web:token", "pause", True), ("web:anonymous", "resume", False), ("web:token", "resume", True)]
    assert [(a["who"], a["action"], a["ok"]) for a in audit] == expected


def test_login_sets_a_strict_httponly_cookie_that_is_not_the_token(web: Settings) -> None:
    c = client(web)
    r = c.post("/login", data={"token": "wrong", "next": "/"})
    assert r.status_code == 401 and "Wrong token." in r.text
    r = c.post("/login", data={"token": TOKEN, "next": "https://evil.example/"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert TOKEN not in cookie
    assert "Log out" in c.get("/").text
    c.post("/logout")
    assert c.post("/pause").status_code == 401

    no_token = client(with_web(web, token=None))
    r = no_token.post("/login", data={"token": TOKEN})
    assert r.status_code == 403 and "SORTE_WEB__TOKEN" in r.text
    r = no_token.post("/pause")
    assert r.status_code == 403 and "SORTE_WEB__TOKEN" in r.text


def test_reading_needs_the_token_off_loopback_or_without_open_read(web: Settings) -> None:
    for closed in (with_web(web, host="0.0.0.0"), with_web(web, open_read=False)):  # noqa: S104 - not bound here
        c = client(closed)
        assert c.get("/api/v1/overview").status_code == 401
        assert c.get("/api/v1/overview", headers=WRONG).status_code == 401
        assert c.get("/api/v1/overview", headers=BEARER).status_code == 200
        assert c.get("/metrics").status_code == 401
        r = c.get("/deployments", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/deployments"
        logged_in(c)
        assert c.get("/deployments").status_code == 200  # the session cookie reads too
        assert c.get("/healthz").status_code == 200  # probes stay open
    r = client(with_web(web, host="0.0.0.0", token=None)).get("/api/v1/overview")  # noqa: S104
    assert r.status_code == 403 and "SORTE_WEB__TOKEN" in r.json()["detail"]


def test_run_page_shows_request_plan_diff_verdict_pr_timeline_and_buttons(web: Settings) -> None:
    waiting_run_record(web)
    c = client(web)
    page = c.get(f"/runs/{RUN_ID}").text
    for text in (
        "raise the momentum stop loss to 3%",
        "stop_loss 0.02 -&gt; 0.03",
        "+STOP = 0.03",
        "all gates passed",
        'href="https://github.com/o/r/pull/7"',
        'id="approve"',
        'id="reject"',
        "seconds=1.5",
    ):
        assert text in page, text
    assert page.count("<td>plan</td>") == 2  # this run's two audit lines, not the other run's
    assert RUN_ID in c.get("/runs").text
    assert f'href="/runs/{RUN_ID}"' in c.get("/").text  # listed as waiting for approval
    assert c.get(f"/api/v1/runs/{RUN_ID}/diff").json()["diff"].endswith("+STOP = 0.03\n")
    assert RunView.model_validate(c.get(f"/api/v1/runs/{RUN_ID}").json()).status == "awaiting_approval"


def test_a_run_link_that_is_not_http_is_not_clickable(web: Settings) -> None:
    waiting_run_record(web, pr_url="javascript:alert(1)")
    page = client(web).get(f"/runs/{RUN_ID}").text
    assert 'href="javascript:' not in page and 'id="pr"' not in page


def test_deciding_a_run_the_agent_has_no_approval_for_is_a_409(web: Settings) -> None:
    # The journal says "awaiting_approval" but the agent's checkpoints hold no such run: the
    # agent refuses, and the front-end reports a conflict, not a server error.
    waiting_run_record(web)
    c = client(web)
    r = c.post(f"/api/v1/runs/{RUN_ID}/approve", headers=BEARER)
    assert r.status_code == 409 and "not waiting for approval" in r.json()["detail"]
    logged_in(c)
    r = c.post(f"/runs/{RUN_ID}/reject", data={"comment": "no"})
    assert r.status_code == 409 and "not waiting for approval" in r.text
    audit = [json.loads(line) for line in (web.data_dir / "audit.jsonl").read_text().splitlines()]
    assert [(a["action"], a["ok"]) for a in audit] == [("approve", False), ("reject", False)]


def test_healthz_readyz_and_metrics(web: Settings) -> None:
    c = client(web)
    assert c.get("/healthz").json() == {"ok": True}
    r = c.get("/readyz")
    assert r.status_code == 503  # no commander runs here
    health = Health.model_validate(r.json())
    assert health.checks == {"data_dir": "ok", "commander": "not running"}
    c.get("/api/v1/runs/nope")
    text = c.get("/metrics").text
    assert 'sorte_web_requests_total{method="GET",route="/api/v1/runs/{run_id}",status="404"} 1.0' in text
    assert "sorte_web_request_seconds_bucket" in text
    assert "nope" not in text  # ids do not become label values


def test_openapi_lists_every_endpoint_with_the_bearer_scheme(web: Settings) -> None:
    spec = client(web).get("/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/api/v1/overview",
        "/api/v1/trades",
        "/api/v1/runs/{run_id}/diff",
        "/api/v1/deployments/{deployment_id}",
        "/api/v1/rollback",
        "/api/v1/runs/{run_id}/approve",
        "/readyz",
    ):
        assert path in paths, path
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/runs/{run_id}" not in paths  # the HTML pages are not part of the API


def test_static_stylesheet_is_served(web: Settings) -> None:
    r = client(web).get("/static/style.css")
    assert r.status_code == 200 and "font" in r.text
