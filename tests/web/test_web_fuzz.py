"""Schemathesis against the /api/v1 OpenAPI schema, from the ASGI app: whatever the input, with
or without the token, the API answers with a 4xx or a 2xx, never a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sorte.config import Settings
from sorte.web import create_app
from tests.web.web_env import BEARER, TOKEN, StubLLM, waiting_run_record


def _schema() -> schemathesis.BaseSchema:
    # schemathesis.pytest.from_fixture fails on pytest 9 (it reads Function._nodeid), so the schema is
    # loaded at import from an app whose settings are never read (building the OpenAPI document touches
    # no file); each case is then sent to the app of the ``fuzz_app`` fixture, over a real data dir.
    placeholder = Settings(
        data_dir=Path("/nonexistent/sorte-web-fuzz"), web={"token": TOKEN, "allowed_hosts": ["testserver"]}
    )
    loaded = schemathesis.openapi.from_asgi("/openapi.json", create_app(placeholder))
    return loaded.include(path_regex="^/api/v1/")  # /readyz answers 503 by design when not ready


schema = _schema()


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    folder = tmp_path_factory.mktemp("fuzz")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # no stray ./sorte.yaml or .env
        for key in list(__import__("os").environ):
            if key.startswith("SORTE_"):
                mp.delenv(key)
        web = Settings(data_dir=folder / "var", web={"token": TOKEN, "allowed_hosts": ["testserver"]})
        waiting_run_record(web)  # a run the fuzzer can hit by its id, through the schema's examples or by chance
        yield create_app(web, llm=StubLLM())


@schema.parametrize()
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_with_a_server_error(fuzz_app: FastAPI, case: schemathesis.Case) -> None:
    # the headers as generated (no token, or a random one), then the right token
    case.call_and_validate(app=fuzz_app, checks=[not_a_server_error])
    case.call_and_validate(app=fuzz_app, headers=BEARER, checks=[not_a_server_error])


def test_the_fuzzed_schema_covers_reads_and_actions() -> None:
    operations = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert ("GET", "/api/v1/runs/{run_id}") in operations
    assert ("POST", "/api/v1/rollback") in operations
    assert ("POST", "/api/v1/runs/{run_id}/approve") in operations
    assert len([op for op in operations if op[0] == "POST"]) == 5
    assert all(path.startswith("/api/v1/") for _, path in operations)
