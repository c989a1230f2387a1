"""The edit service and ``sorte edit`` / ``sorte branches``, with the real editor on real git repositories."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import git, make_repo
from typer.testing import CliRunner

from sorte.config import Settings
from sorte.editing import branches, gitops, run_worktrees
from sorte.editing.git_records import RUN_ID_RE, GitOpsError

pytest.importorskip("sorte.editing.apply")
from sorte.editing.plan import EditPlan, EditRefused  # noqa: E402

PLAN = {
    "summary": "Wider momentum stop loss, stricter confidence, later technical filter",
    "ops": [
        {"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03},
        {"op": "set_min_confidence", "value": 0.8},
        {"op": "set_stage", "stage": "technical", "threshold": 0.6},
    ],
}
REQUEST = "aumenta o stop loss do momentum para 3%"
MOM = "strategies/momentum.py"


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


@pytest.fixture()
def cfg(settings: Settings, repo: Path) -> Settings:
    return settings.model_copy(update={"strategies_dir": repo / "strategies"})


def plan(**changes) -> EditPlan:
    return EditPlan.model_validate({**PLAN, **changes})


def branch_names(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/sorte").split()


def test_edit_commits_one_plan_on_a_run_branch(cfg, repo):
    out = branches.edit_on_branch(cfg, plan(), REQUEST, run_id="r1")
    assert out.branch == "sorte/r1-aumenta-o-stop-loss-do-momentum-para-3" and out.kept and not out.dry_run
    assert out.changed == ["strategies/cascade.py", "strategies/momentum.py"]
    assert '+        "default": 0.03,' in out.diff and "+MIN_CONFIDENCE = 0.8" in out.diff
    assert out.branch_diff.count("diff --git") == 2
    body = git(repo, "log", "-1", "--format=%an|%B", out.commit)
    assert body.startswith("Sorte|sorte: Wider momentum stop loss") and REQUEST in body and "Sorte-Run: r1" in body
    assert git(repo, "status", "--porcelain").strip() == ""  # the user's checkout is untouched
    assert "0.02" in (repo / "strategies" / "momentum.py").read_text()


def test_rerunning_the_same_plan_and_run_id_adds_nothing(cfg, repo):
    first = branches.edit_on_branch(cfg, plan(), REQUEST, run_id="r1")
    again = branches.edit_on_branch(cfg, plan(), REQUEST, run_id="r1")
    assert again.commit == first.commit and again.diff == "" and again.branch == first.branch
    assert git(repo, "rev-list", "--count", f"main..{first.branch}").strip() == "1"
    assert branch_names(repo) == [first.branch]
    follow_up = plan(
        summary="Even wider", ops=[{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.04}]
    )
    out = branches.edit_on_branch(cfg, follow_up, "and 4%", run_id="r1")
    assert out.commit != first.commit
    assert git(repo, "rev-list", "--count", f"main..{first.branch}").strip() == "2"


def test_dry_run_writes_and_commits_nothing(cfg, repo):
    out = branches.edit_on_branch(cfg, plan(), REQUEST, run_id="dry", dry_run=True)
    assert out.commit is None and out.dry_run and not out.kept and "+MIN_CONFIDENCE = 0.8" in out.diff
    assert branch_names(repo) == [] and run_worktrees.find_run(repo, "dry") is None
    assert not (cfg.data_dir / "worktrees" / "dry").exists()


def test_refused_plan_leaves_no_trace(cfg, repo):
    bad = plan(ops=[*PLAN["ops"], {"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 9.0}])
    with pytest.raises(EditRefused, match="operation 3"):
        branches.edit_on_branch(cfg, bad, REQUEST, run_id="bad")
    assert branch_names(repo) == [] and run_worktrees.find_run(repo, "bad") is None
    assert not (cfg.data_dir / "worktrees" / "bad").exists()
    # refused on an existing run: its branch and commits stay as they were
    first = branches.edit_on_branch(cfg, plan(), REQUEST, run_id="r1")
    with pytest.raises(EditRefused):
        branches.edit_on_branch(cfg, bad, REQUEST, run_id="r1")
    assert git(repo, "rev-parse", first.branch).strip() == first.commit
    assert git(repo, "-C", str(cfg.data_dir / "worktrees" / "r1"), "status", "--porcelain").strip() == ""


def test_plan_that_changes_nothing_keeps_no_branch(cfg, repo):
    noop = plan(ops=[{"op": "set_min_confidence", "value": 0.75}])
    out = branches.edit_on_branch(cfg, noop, "same as now")
    assert out.commit is None and not out.kept and branch_names(repo) == []


def test_concurrent_edits_of_one_run_id_make_one_branch_and_one_commit(cfg, repo):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda i: branches.edit_on_branch(cfg, plan(), REQUEST, run_id="same"), range(4)))
    assert len({o.commit for o in outs}) == 1 and branch_names(repo) == [outs[0].branch]
    assert git(repo, "rev-list", "--count", f"main..{outs[0].branch}").strip() == "1"


def test_identity_base_and_merge_mode_come_from_the_git_settings(cfg, repo):
    from sorte.config import GitSettings

    git(repo, "branch", "trunk")
    section = GitSettings(author_name="Bot", author_email="bot@example.com", base_branch="trunk", merge_mode="merge")
    custom = cfg.model_copy(update={"git": section})
    out = branches.edit_on_branch(custom, plan(), REQUEST, run_id="r1")
    assert git(repo, "log", "-1", "--format=%an <%ae>", out.commit).strip() == "Bot <bot@example.com>"
    merged = branches.merge(custom, "r1")
    assert git(repo, "rev-parse", "trunk").strip() == merged != out.commit  # a merge commit on trunk
    assert git(repo, "log", "-1", "--format=%an", "main").strip() == "Trader"
    assert branches.git_config(cfg).identity == gitops.GitIdentity("Sorte", "sorte@localhost")


def test_generated_run_ids_are_valid_and_distinct():
    ids = {branches.new_run_id() for _ in range(20)}
    assert len(ids) == 20 and all(RUN_ID_RE.match(i) for i in ids)


def test_service_branches_merge_abandon(cfg, repo):
    a = branches.edit_on_branch(cfg, plan(), REQUEST, run_id="a")
    branches.edit_on_branch(cfg, plan(ops=[{"op": "set_min_confidence", "value": 0.7}]), "b", run_id="b")
    assert branches.merge(cfg, "a") == a.commit
    branches.abandon(cfg, "b")
    assert {i.run_id: i.state for i in branches.branches(cfg)} == {"a": "merged", "b": "abandoned"}
    with pytest.raises(GitOpsError):
        branches.merge(cfg, "b")


# -- CLI ---------------------------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str):
    from sorte.cli.main import app

    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture()
def cli_env(cfg, repo, monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("SORTE_STRATEGIES_DIR", str(repo / "strategies"))
    monkeypatch.setenv("SORTE_DATA_DIR", str(cfg.data_dir))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(PLAN))
    return path


def test_cli_edit_prints_the_diff_and_commits(cli_env, repo):
    result = invoke("edit", "--plan", str(cli_env), "--request", REQUEST, "--run-id", "c1")
    assert result.exit_code == 0, result.output
    assert "+MIN_CONFIDENCE = 0.8" in result.stdout and "--- a/strategies/momentum.py" in result.stdout
    assert "committed" in result.output and "sorte/c1-aumenta" in result.output
    assert branch_names(repo) == ["sorte/c1-aumenta-o-stop-loss-do-momentum-para-3"]


def test_cli_dry_run(cli_env, repo):
    result = invoke("edit", "--plan", str(cli_env), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "+MIN_CONFIDENCE = 0.8" in result.stdout and "nothing written or committed" in result.output
    assert branch_names(repo) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read plan file"),
        ("{not json", "refused"),
        (json.dumps({"summary": "x", "ops": [{"op": "set_param", "strategy": "momentum"}]}), "operation 0"),
        (
            json.dumps({**PLAN, "ops": [{"op": "set_param", "strategy": "momentum", "name": "nope", "value": 1}]}),
            "nope",
        ),
    ],
)
def test_cli_bad_plans_exit_2_with_one_line(cli_env, repo, content, message):
    path = cli_env.with_name("bad.json")
    if content is not None:
        path.write_text(content)
    result = invoke("edit", "--plan", str(path))
    assert result.exit_code == 2
    assert message in result.output and result.output.strip().startswith("error:")
    assert "Traceback" not in result.output and branch_names(repo) == []


def test_cli_missing_repo_and_bad_run_id(cli_env, tmp_path, monkeypatch):
    result = invoke("edit", "--plan", str(cli_env), "--run-id", "../x")
    assert result.exit_code == 2 and "invalid run id" in result.output
    outside = tmp_path / "outside" / "strategies"
    outside.mkdir(parents=True)
    monkeypatch.setenv("SORTE_STRATEGIES_DIR", str(outside))
    result = invoke("edit", "--plan", str(cli_env))
    assert result.exit_code == 2 and "not inside a git repository" in result.output


def test_cli_branches_list_diff_merge_abandon(cli_env, repo):
    assert "no Sorte branches" in invoke("branches").stdout
    invoke("edit", "--plan", str(cli_env), "--run-id", "m1")
    invoke("edit", "--plan", str(cli_env), "--run-id", "m2")
    listing = invoke("branches").stdout
    assert "m1" in listing and "m2" in listing and "open" in listing
    assert "+MIN_CONFIDENCE = 0.8" in invoke("branches", "diff", "m1").stdout
    result = invoke("branches", "merge", "m1", "--mode", "ff")
    assert result.exit_code == 0 and "merged" in result.stdout
    # m2 branched from the old main, which has moved on since
    result = invoke("branches", "merge", "m2", "--mode", "ff")
    assert result.exit_code == 2 and "cannot fast-forward" in result.output
    assert invoke("branches", "abandon", "m2").exit_code == 0
    result = invoke("branches", "merge", "m2")
    assert result.exit_code == 2 and "abandoned" in result.output
    assert invoke("branches", "merge", "m9", "--mode", "squash").exit_code == 2
    listing = invoke("branches").stdout
    assert "merged" in listing and "abandoned" in listing


def _said(output: str) -> list[str]:
    """The lines ``sorte edit`` itself printed (the structured log's own lines left out)."""
    return [line for line in output.splitlines() if line.startswith(("error:", "warning:", "dry run"))]


def test_cli_edit_says_once_when_plan_code_was_validated_without_namespaces(cli_env, repo, no_namespaces):
    result = invoke("edit", "--plan", str(cli_env), "--dry-run")
    assert result.exit_code == 0, result.output
    said = _said(result.output)
    assert len(said) == 2 and said[0].startswith("warning:") and said[1].startswith("dry run")
    assert "weaker isolation" in said[0] and "current user" in said[0]


def test_cli_refusal_also_says_it_after_the_error(cli_env, repo, no_namespaces):
    body = "return 1 // 0"
    cli_env.write_text(
        json.dumps({**PLAN, "ops": [{"op": "replace_body", "file": MOM, "function": "lookback", "body": body}]})
    )
    result = invoke("edit", "--plan", str(cli_env), "--dry-run")
    assert result.exit_code == 2
    said = _said(result.output)
    assert [line.split(":")[0] for line in said] == ["error", "warning"]
    assert "ZeroDivisionError" in said[0] and "weaker isolation" in said[1]


def test_cli_edit_with_namespaces_prints_no_warning(cli_env, repo):
    from sandbox.confined import namespaces_available
    from sorte.editing import sandboxed

    if not namespaces_available():
        pytest.skip("needs root and network/mount namespaces (unshare)")
    sandboxed.shutdown()
    result = invoke("edit", "--plan", str(cli_env), "--dry-run")
    assert result.exit_code == 0 and "warning:" not in result.output
