"""Git operations of a run, on real repositories in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from gitrepo import git, make_repo

from sorte.editing import gitops, run_worktrees
from sorte.editing.git_records import GitOpsError
from sorte.editing.gitops import GitIdentity, MergeConflict
from sorte.editing.run_worktrees import RunWorktree, slugify


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def commit_edit(run: RunWorktree, old: str = '"default": 0.02', new: str = '"default": 0.03', **kw) -> str:
    edit(run.path / "strategies" / "momentum.py", old, new)
    sha = gitops.commit_run(run, "aumenta o stop loss do momentum para 3%", "momentum.stop_loss 0.02 -> 0.03", **kw)
    assert sha
    return sha


def test_open_run_creates_branch_and_worktree_outside_the_checkout(repo):
    run = run_worktrees.open_run(repo, "r1", "Aumenta o stop loss do momentum para 3%!")
    assert run.branch == "sorte/r1-aumenta-o-stop-loss-do-momentum-para-3"
    assert run.path == (repo / "var" / "worktrees" / "r1").resolve()
    assert run.created and run.base == "main"
    assert git(run.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == run.branch
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"  # the user's checkout is untouched
    assert (run.path / "strategies" / "momentum.py").exists()


def test_reopening_a_run_reuses_branch_and_worktree(repo, tmp_path):
    first = run_worktrees.open_run(repo, "r1", "first request", worktrees_dir=tmp_path / "wt")
    again = run_worktrees.open_run(repo, "r1", "a different request", worktrees_dir=tmp_path / "wt")
    assert (again.branch, again.path, again.created) == (first.branch, first.path, False)
    assert len(git(repo, "branch", "--list", "sorte/*").splitlines()) == 1
    assert len(git(repo, "worktree", "list").splitlines()) == 2


def test_reopen_discards_leftovers_and_recreates_a_missing_worktree(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    (run.path / "strategies" / "momentum.py").write_text("half-written")
    (run.path / "strategies" / "stray.py").write_text("x = 1\n")
    run_worktrees.open_run(repo, "r1", "x")
    assert "PARAMS" in (run.path / "strategies" / "momentum.py").read_text()
    assert not (run.path / "strategies" / "stray.py").exists()
    shutil.rmtree(run.path)
    again = run_worktrees.open_run(repo, "r1", "x")
    assert (again.path / "strategies" / "momentum.py").exists()


def test_reopen_repairs_a_worktree_add_killed_half_way(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    # What `git worktree add` leaves when killed: its registration still locked ("initializing")
    # and a half-made folder.
    admin = Path(git(repo, "rev-parse", "--git-common-dir").strip())
    admin = (admin if admin.is_absolute() else repo / admin) / "worktrees" / run.path.name
    (admin / "locked").write_text("initializing")
    shutil.rmtree(run.path / "strategies")
    again = run_worktrees.open_run(repo, "r1", "x")
    assert (again.path / "strategies" / "momentum.py").exists()
    shutil.rmtree(run.path)  # killed before the checkout began: a registration without its folder
    (admin / "locked").write_text("initializing")
    again = run_worktrees.open_run(repo, "r1", "x")
    assert (again.path / "strategies" / "momentum.py").exists()
    assert git(again.path, "rev-parse", "--abbrev-ref", "HEAD").strip() == run.branch


def test_reopen_removes_the_locks_of_a_commit_killed_half_way(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    commit_edit(run)
    gitdir = Path(git(run.path, "rev-parse", "--absolute-git-dir").strip())
    (gitdir / "index.lock").write_text("")
    (repo / ".git" / "refs" / "heads" / f"{run.branch}.lock").write_text("")
    again = run_worktrees.open_run(repo, "r1", "x")
    edit(again.path / "strategies" / "momentum.py", '"default": 0.03', '"default": 0.04')
    assert gitops.commit_run(again, "more", "momentum.stop_loss 0.03 -> 0.04")


def test_a_run_killed_while_being_recorded_is_created_again(repo):
    # Killed among the config writes of a new run, before `branch`: the run is not recorded.
    git(repo, "config", "--local", "sorte.r1.base", "main")
    git(repo, "config", "--local", "sorte.r1.path", "/nowhere")
    run = run_worktrees.open_run(repo, "r1", "x")
    assert run.created and (run.path / "strategies" / "momentum.py").exists()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a b", "-x", "x" * 65, "a..b", "r;rm", "é"])
def test_run_ids_are_validated(repo, bad):
    with pytest.raises(GitOpsError, match="invalid run id"):
        run_worktrees.open_run(repo, bad, "x")


def test_missing_repo_and_missing_base_are_clear_errors(tmp_path, repo):
    with pytest.raises(GitOpsError, match="not inside a git repository"):
        run_worktrees.open_run(tmp_path / "nowhere", "r1", "x")
    with pytest.raises(GitOpsError, match="base branch develop not found"):
        run_worktrees.open_run(repo, "r1", "x", base="develop")


def test_one_atomic_commit_with_identity_message_and_trailers(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    sha = commit_edit(run, key="abc123", identity=GitIdentity("Bot", "bot@example.com"))
    log = git(repo, "log", "-1", "--format=%an <%ae>|%cn|%B", sha)
    assert log.startswith("Bot <bot@example.com>|Bot|sorte: momentum.stop_loss 0.02 -> 0.03")
    assert "Request: aumenta o stop loss do momentum para 3%" in log
    assert "Sorte-Run: r1" in log and "Sorte-Plan: abc123" in log
    assert git(repo, "rev-list", "--count", f"main..{run.branch}").strip() == "1"
    assert git(repo, "show", "--name-only", "--format=", sha).split() == ["strategies/momentum.py"]
    assert git(repo, "log", "-1", "--format=%an", "main").strip() == "Trader"  # main untouched


def test_default_identity_and_nothing_to_commit(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    assert gitops.commit_run(run, "req", "summary") is None
    sha = commit_edit(run)
    assert git(repo, "log", "-1", "--format=%an <%ae>", sha).strip() == "Sorte <sorte@localhost>"


def test_same_plan_for_the_same_run_is_committed_once(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    sha = commit_edit(run, key="k1")
    run = run_worktrees.open_run(repo, "r1", "x")
    (run.path / "strategies" / "breakout.py").write_text("# would be a second commit\n")
    assert gitops.commit_run(run, "req", "summary", key="k1") == sha
    assert git(repo, "rev-list", "--count", f"main..{run.branch}").strip() == "1"


def test_commit_stages_only_the_given_paths(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    (run.path / "strategies" / "other.py").write_text("y = 2\n")
    sha = commit_edit(run, paths=["strategies/momentum.py"])
    assert git(repo, "show", "--name-only", "--format=", sha).split() == ["strategies/momentum.py"]


def test_diff_against_base(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    commit_edit(run)
    text = gitops.diff(repo, "r1")
    assert "--- a/strategies/momentum.py" in text and "+++ b/strategies/momentum.py" in text
    assert '-        "default": 0.02,' in text and '+        "default": 0.03,' in text
    # the base moving on does not leak into the run's diff
    (repo / "strategies" / "breakout.py").write_text("# changed on main\n")
    git(repo, "commit", "--quiet", "-am", "main moves")
    assert "breakout" not in gitops.diff(repo, "r1")


def test_abandon_deletes_worktree_and_branch_keeps_audit_ref(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    sha = commit_edit(run)
    gitops.abandon(repo, "r1")
    assert not run.path.exists()
    assert git(repo, "branch", "--list", "sorte/*").strip() == ""
    assert git(repo, "rev-parse", "refs/sorte/abandoned/r1").strip() == sha
    (info,) = gitops.list_branches(repo)
    assert (info.state, info.ahead, info.worktree) == ("abandoned", 1, None)
    assert "0.03" in gitops.diff(repo, "r1")
    with pytest.raises(GitOpsError, match="abandoned; start a new run id"):
        run_worktrees.open_run(repo, "r1", "x")
    with pytest.raises(GitOpsError, match="already abandoned"):
        gitops.abandon(repo, "r1")


def test_merge_fast_forward_updates_main_and_its_checkout(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    sha = commit_edit(run)
    assert gitops.merge(repo, "r1", "ff") == sha
    assert git(repo, "rev-parse", "main").strip() == sha
    assert '"default": 0.03' in (repo / "strategies" / "momentum.py").read_text()  # checkout follows
    assert git(repo, "status", "--porcelain").strip() == ""
    assert not run.path.exists()
    (info,) = gitops.list_branches(repo)
    assert (info.state, info.ahead, info.behind) == ("merged", 0, 0)


def test_merge_commit_when_main_moved_on(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    tip = commit_edit(run)
    (repo / "strategies" / "breakout.py").write_text("# changed on main\n")
    git(repo, "commit", "--quiet", "-am", "main moves")
    with pytest.raises(GitOpsError, match="cannot fast-forward"):
        gitops.merge(repo, "r1", "ff")
    new = gitops.merge(repo, "r1", "merge")
    parents = git(repo, "log", "-1", "--format=%P|%an|%s", new).strip()
    assert parents.split("|")[0].split()[1] == tip
    assert parents.split("|")[1:] == ["Sorte", f"Merge {run.branch} into main"]
    assert '"default": 0.03' in (repo / "strategies" / "momentum.py").read_text()


def test_merge_commit_without_a_checkout_of_main(repo):
    git(repo, "checkout", "--quiet", "-b", "elsewhere")
    run = run_worktrees.open_run(repo, "r1", "x")
    tip = commit_edit(run)
    new = gitops.merge(repo, "r1", "merge")
    assert git(repo, "rev-parse", "main").strip() == new
    assert git(repo, "log", "-1", "--format=%P", new).split()[1] == tip


def test_conflict_is_refused_and_changes_nothing(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    commit_edit(run)
    edit(repo / "strategies" / "momentum.py", '"default": 0.02', '"default": 0.05')
    git(repo, "commit", "--quiet", "-am", "conflicting change on main")
    before = git(repo, "rev-parse", "main", run.branch)
    with pytest.raises(MergeConflict, match="conflicts with main in strategies/momentum.py"):
        gitops.merge(repo, "r1", "merge")
    assert git(repo, "rev-parse", "main", run.branch) == before
    assert git(repo, "status", "--porcelain").strip() == ""
    assert gitops.list_branches(repo)[0].state == "open"


def test_merge_refuses_a_dirty_checkout_and_an_empty_run(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    with pytest.raises(GitOpsError, match="nothing to merge"):
        gitops.merge(repo, "r1")
    commit_edit(run)
    edit(repo / "strategies" / "breakout.py", '"""', '"""Dirty. ')
    with pytest.raises(GitOpsError, match="uncommitted changes"):
        gitops.merge(repo, "r1")
    assert git(repo, "rev-parse", "main").strip() != git(repo, "rev-parse", run.branch).strip()


class Killed(BaseException):
    """A SIGKILL between the merge's ref move and its record, as the crash tests see it."""


def _merge_killed_before_recording(monkeypatch, repo: Path, run_id: str, mode: str) -> str:
    real = gitops.set_run_config

    def die_on_merged(r, rid, **values):
        if values.get("state") == "merged":
            raise Killed
        real(r, rid, **values)

    monkeypatch.setattr(gitops, "set_run_config", die_on_merged)
    with pytest.raises(Killed):
        gitops.merge(repo, run_id, mode)
    monkeypatch.setattr(gitops, "set_run_config", real)
    return git(repo, "rev-parse", "main").strip()


@pytest.mark.parametrize(
    "mode,main_moved,checkout", [("ff", False, True), ("merge", True, True), ("merge", False, False)]
)
def test_a_merge_killed_before_its_record_is_finished_not_repeated(monkeypatch, repo, mode, main_moved, checkout):
    if not checkout:
        git(repo, "checkout", "--quiet", "-b", "elsewhere")
    run = run_worktrees.open_run(repo, "r1", "x")
    tip = commit_edit(run)
    if main_moved:
        (repo / "strategies" / "breakout.py").write_text("# changed on main\n")
        git(repo, "commit", "--quiet", "-am", "main moves")
    moved_to = _merge_killed_before_recording(monkeypatch, repo, "r1", mode)
    assert gitops.merged_sha(repo, "r1") is None  # the run still reads as open...
    with pytest.raises(GitOpsError, match="nothing to merge"):
        gitops.merge(repo, "r1", mode)  # ...and merging it again cannot work
    if checkout:  # main moves on before the run is resumed: the merge is still found
        (repo / "strategies" / "breakout.py").write_text("# main moves on after the crash\n")
        git(repo, "commit", "--quiet", "-am", "later work on main")
    assert gitops.finish_interrupted_merge(repo, "r1") == (tip if mode == "ff" else moved_to)
    assert gitops.merged_sha(repo, "r1") == (tip if mode == "ff" else moved_to)
    assert not run.path.exists()
    assert gitops.finish_interrupted_merge(repo, "r1") is None  # recorded once


def test_an_unmerged_or_empty_run_is_not_taken_for_an_interrupted_merge(repo):
    run_worktrees.open_run(repo, "empty", "x")
    assert gitops.finish_interrupted_merge(repo, "empty") is None
    run = run_worktrees.open_run(repo, "r1", "x")
    commit_edit(run)
    assert gitops.finish_interrupted_merge(repo, "r1") is None
    assert gitops.merge(repo, "r1") == git(repo, "rev-parse", "main").strip()


def test_list_branches_states_and_counts(repo):
    a = run_worktrees.open_run(repo, "a", "first")
    commit_edit(a)
    commit_edit(a, '"default": 10', '"default": 12')
    b = run_worktrees.open_run(repo, "b", "second")
    commit_edit(b)
    run_worktrees.open_run(repo, "c", "third")
    gitops.merge(repo, "b")
    gitops.abandon(repo, "c")
    infos = {i.run_id: i for i in gitops.list_branches(repo)}
    assert infos["a"].state == "open" and (infos["a"].ahead, infos["a"].behind) == (2, 1)
    assert infos["a"].worktree == a.path and infos["a"].last_subject.startswith("sorte: momentum")
    assert infos["b"].state == "merged"
    assert infos["c"].state == "abandoned" and infos["c"].ahead == 0
    assert infos["a"].branch == "sorte/a-first"


def test_discard_run_forgets_everything(repo):
    run = run_worktrees.open_run(repo, "r1", "x")
    run_worktrees.discard_run(repo, "r1")
    assert not run.path.exists()
    assert run_worktrees.find_run(repo, "r1") is None
    assert git(repo, "branch", "--list", "sorte/*").strip() == ""
    assert run_worktrees.open_run(repo, "r1", "x").created


def test_slugify():
    assert slugify("Só compra quando o RSI < 30 em mean_reversion") == "so-compra-quando-o-rsi-30-em-mean-revers"
    assert slugify("!!!") == "edit"
