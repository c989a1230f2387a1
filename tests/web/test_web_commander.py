"""The status page over a data directory a real commander filled: deployments with their analysis,
a ledger with trades and equity, alerts, the active slot's metrics; then a rollback through the
API and another through the deployments page's button, each changing the commander's state."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from sorte.config import Settings
from sorte.service import ActionResult, DeploymentView, Overview, TradeView
from tests.commander.commander_env import deploy
from tests.web.web_env import BEARER, client, deployed_project, logged_in, new_candidate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, int, int]]:
    folder = tmp_path_factory.mktemp("web-commander")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)  # no stray ./sorte.yaml or .env
        for key in list(__import__("os").environ):
            if key.startswith("SORTE_"):
                mp.delenv(key)
        yield deployed_project(folder)


# The first test runs right after the module's commander stopped: the slot's snapshot (and its
# metrics) is only shown while fresh (two minutes).
def test_metrics_carry_the_active_slots_metrics(project: tuple[Settings, int, int]) -> None:
    settings, _, _ = project
    text = client(settings).get("/metrics").text
    assert "sorte_web_requests_total" in text
    assert "sorte_stage_discards_total" in text or "sorte_stage_passes_total" in text
    stages = client(settings).get("/api/v1/stages").json()
    assert stages and all(0 <= (s["pass_rate"] or 0) <= 1 for s in stages)


def test_overview_shows_the_active_deployment_lease_profit_chart_and_alerts(project: tuple[Settings, int, int]) -> None:
    settings, _, candidate = project
    c = client(settings)
    overview = Overview.model_validate(c.get("/api/v1/overview").json())
    assert overview.active is not None and overview.active.id == candidate
    assert overview.profit is not None and overview.profit.steps > 1
    assert overview.alerts
    page = c.get("/").text
    assert f'<a href="/deployments">#{candidate}</a>' in page
    assert overview.active.commit[:12] in page
    assert f"epoch {overview.lease.epoch}" in page and overview.lease.epoch > 0
    assert f"{overview.profit.return_pct:+.2f}%" in page
    assert '<polyline class="equity"' in page
    assert overview.alerts[-1].message in page
    trades = TypeAdapter(list[TradeView]).validate_python(c.get("/api/v1/trades?limit=5").json())
    assert trades and len(trades) <= 5
    assert len(c.get("/api/v1/equity?points=10").json()) <= 11


def test_deployments_page_lists_the_history_with_analysis_and_rollback_buttons(
    project: tuple[Settings, int, int],
) -> None:
    settings, baseline, candidate = project
    c = client(settings)
    views = TypeAdapter(list[DeploymentView]).validate_python(c.get("/api/v1/deployments").json())
    by_id = {v.deployment.id: v for v in views}
    assert by_id[candidate].deployment.state == "active" and not by_id[candidate].can_roll_back_to
    assert by_id[baseline].can_roll_back_to
    page = c.get("/deployments").text
    assert 'id="rollback-previous"' in page
    for v in views:
        assert f'id="deployment-{v.deployment.id}"' in page
        assert (f'id="rollback-{v.deployment.id}"' in page) == v.can_roll_back_to
    analysed = by_id[candidate].deployment.analysis
    assert analysed is not None and f'class="verdict {analysed["verdict"]}"' in page
    one = DeploymentView.model_validate(c.get(f"/api/v1/deployments/{candidate}").json())
    assert one.deployment.id == candidate and one.events
    assert c.get("/api/v1/deployments/999").status_code == 404


# Last: it changes the commander's state the tests above read.
def test_rollback_through_the_api_then_through_the_pages_button(project: tuple[Settings, int, int]) -> None:
    settings, baseline, candidate = project
    c = client(settings)
    assert c.post("/api/v1/rollback", json={"reason": "web test"}).status_code == 401

    r = c.post("/api/v1/rollback", json={"reason": "web test"}, headers=BEARER)
    assert r.status_code == 200, r.text
    result = ActionResult.model_validate(r.json())
    assert result.ok and result.detail["reason"] == "web test"
    deployments = {v["deployment"]["id"]: v["deployment"] for v in c.get("/api/v1/deployments").json()}
    assert deployments[candidate]["state"] == "rolled_back"
    assert deployments[baseline]["state"] == "active"
    r = c.post("/api/v1/rollback", json={"to": candidate}, headers=BEARER)
    assert r.status_code == 409 and "only a warm or retired one can come back" in r.json()["detail"]

    # A second candidate promoted over the baseline, then the page's button brings the baseline back.
    repo = Path(settings.git.repo_root)
    second, _ = deploy(settings, new_candidate(repo, "second"), "web-second")
    assert c.get("/api/v1/overview").json()["active"]["id"] == second
    page = c.post("/rollback", data={"to": str(baseline)})
    assert page.status_code == 401 and "log in with the token first" in page.text
    logged_in(c)
    assert f'id="rollback-{baseline}"' in c.get("/deployments").text
    page = c.post("/rollback", data={"to": str(baseline), "reason": "from the page"})
    assert page.status_code == 200 and str(page.url).endswith("/deployments")
    assert 'id="flash" class="flash ok"' in page.text and "rolled back" in page.text
    assert '<td class="state rolled_back">rolled_back</td>' in page.text.split(f'id="deployment-{second}"')[1]
    assert c.get("/api/v1/overview").json()["active"]["id"] == baseline
