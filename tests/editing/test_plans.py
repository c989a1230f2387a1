"""Edit plans over the real strategies: valid plans apply, import and re-apply as no-ops;
invalid plans are refused naming the operation, with nothing written."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
from gitrepo import git
from pydantic import ValidationError

from sorte.config import Settings
from sorte.editing import EditPlan, EditRefused, apply_plan, branches, load_plan
from sorte.runtime.cascade import build_cascade, read_cascade
from sorte.runtime.strategy import NOT_STRATEGIES, load_strategy, read_param_specs

MOM = "strategies/momentum.py"
BRK = "strategies/breakout.py"
MR = "strategies/mean_reversion.py"


def plan(*ops: dict) -> dict:
    return {"summary": "test plan", "ops": list(ops)}


def sp(strategy: str, name: str, value: object) -> dict:
    return {"op": "set_param", "strategy": strategy, "name": name, "value": value}


def stage(name: str, **kw: object) -> dict:
    return {"op": "set_stage", "stage": name, **kw}


def body(file: str, function: str, text: str, **kw: object) -> dict:
    return {"op": "replace_body", "file": file, "function": function, "body": text, **kw}


def addf(file: str, source: str) -> dict:
    return {"op": "add_function", "file": file, "source": source}


def imp(file: str, module: str, **kw: object) -> dict:
    return {"op": "add_import", "file": file, "module": module, **kw}


def test(path: str, source: str) -> dict:
    return {"op": "add_test", "path": path, "source": source}


test.__test__ = False  # a plan helper, not a pytest test

HELPER = (
    "def band_width(upper, lower):\n    # why: a normalised width compares across symbols\n    return upper - lower\n"
)
TEST_SRC = "from strategies import momentum\n\n\ndef test_declares_params():\n    assert momentum.PARAMS\n"
PROMPT = 'Risk of a {side} on {symbol}: RSI {rsi}, volatility {volatility}%. Reply as {{"score": 0..1}}.'

VALID = {
    "stop_loss": plan(sp("momentum", "stop_loss", 0.03)),
    "int_param": plan(sp("momentum", "fast", 12)),
    "int_as_float": plan(sp("momentum", "slow", 30.0)),
    "float_as_int": plan(sp("breakout", "width", 3)),
    "param_at_min": plan(sp("mean_reversion", "oversold", 1.0)),
    "param_at_max": plan(sp("mean_reversion", "overbought", 99.0)),
    "zero_stop": plan(sp("breakout", "stop_loss", 0.0)),
    "tiny_float": plan(sp("momentum", "take_profit", 1e-9)),
    "several_params": plan(sp("momentum", "fast", 5), sp("momentum", "slow", 50), sp("breakout", "period", 30)),
    "same_param_twice": plan(sp("momentum", "stop_loss", 0.01), sp("momentum", "stop_loss", 0.05)),
    "threshold": plan(stage("technical", threshold=0.6)),
    "disable_stage": plan(stage("technical", enabled=False)),
    "enable_llm_stage": plan(stage("sentiment", enabled=True)),
    "weight": plan(stage("final", weight=3.5)),
    "move_stage_first": plan(stage("technical", position=0)),
    "move_stage_last": plan(stage("momentum", position=6)),
    "stage_all_fields": plan(stage("risk", threshold=0.4, enabled=True, weight=2.0, position=2)),
    "min_confidence": plan({"op": "set_min_confidence", "value": 0.8}),
    "min_confidence_zero": plan({"op": "set_min_confidence", "value": 0}),
    "replace_lookback": plan(body(MOM, "lookback", "return max(p.fast, p.slow) + 5")),
    "replace_decide": plan(
        body(
            MR,
            "decide",
            """
            r = f["rsi"]
            # why: a narrower band trades less often
            with np.errstate(invalid="ignore"):
                buy = r < p.oversold - 5
                sell = r > p.overbought + 5
            side = np.where(buy, 1, np.where(sell, -1, 0))
            score = np.where(side != 0, 0.8, 0.0)
            reason = np.where(buy, "deep oversold", np.where(sell, "deep overbought", ""))
            return score, side, reason
            """,
        )
    ),
    "replace_with_signature": plan(
        body(MOM, "lookback", "return max(p.fast, p.slow) + extra", signature="(p, extra=1)")
    ),
    "replace_with_annotation": plan(body(BRK, "lookback", "return p.period + 2", signature="(p) -> int")),
    "add_function": plan(addf(BRK, HELPER)),
    "add_and_use_function": plan(
        addf(BRK, HELPER),
        body(BRK, "lookback", "return p.period + 1 + 0 * band_width(1, 1)"),
    ),
    "add_two_remove_one": plan(
        addf(MOM, "def unused(x):\n    return x\n"),
        addf(MOM, "def kept(x):\n    return x + 1\n"),
        {"op": "remove_function", "file": MOM, "name": "unused"},
    ),
    "import_math": plan(imp(MOM, "math")),
    "import_statistics": plan(imp(BRK, "statistics")),
    "import_pandas_alias": plan(imp(MR, "pandas", alias="pd")),
    "import_numpy_again": plan(imp(MOM, "numpy", alias="np"), sp("momentum", "fast", 11)),
    "import_indicator_names": plan(imp(MOM, "sorte.indicators", names=["rsi", "rolling_max"])),
    "import_existing_name_and_new": plan(imp(MR, "sorte.indicators", names=["rsi", "sma"])),
    "add_strategy": plan({"op": "add_strategy", "name": "trend"}),
    "add_strategy_params": plan(
        {"op": "add_strategy", "name": "slow_trend", "description": "Slow SMA trend.", "params": {"period": 60}}
    ),
    "add_test": plan(test("tests/strategies/test_momentum_params.py", TEST_SRC)),
    "edit_prompt": plan({"op": "edit_prompt", "prompt": "risk", "template": PROMPT}),
    "edit_long_prompt": plan({"op": "edit_prompt", "prompt": "technical", "template": "Judge {symbol} {side}. " * 20}),
    "mixed": plan(
        sp("momentum", "stop_loss", 0.025),
        stage("technical", threshold=0.5),
        {"op": "set_min_confidence", "value": 0.7},
        imp(MOM, "math"),
        body(MOM, "lookback", "return max(p.fast, p.slow) + math.ceil(0.5)"),
    ),
    "template_method_file": plan(body("strategies/_template.py", "lookback", "return p.period + 3")),
}

INVALID = {
    # (plan, failing op index or None for the whole plan, reason fragment)
    "unknown_strategy": (plan(sp("nope", "fast", 3)), 0, "does not exist"),
    "unknown_param": (plan(sp("momentum", "nope", 3)), 0, "declares no parameter"),
    "above_max": (plan(sp("momentum", "fast", 201)), 0, "outside its bounds"),
    "below_min": (plan(sp("momentum", "stop_loss", -0.01)), 0, "outside its bounds"),
    "float_for_int": (plan(sp("momentum", "fast", 10.5)), 0, "must be an int"),
    "bool_for_float": (plan(sp("momentum", "stop_loss", True)), 0, "must be a float"),
    "reserved_module": (plan(sp("cascade", "fast", 3)), 0, "not a strategy"),
    "second_op_fails": (plan(sp("momentum", "fast", 12), sp("momentum", "slow", 1000)), 1, "outside"),
    "unknown_stage": (plan(stage("nope", threshold=0.5)), 0, "no cascade stage"),
    "position_past_end": (plan(stage("technical", position=9)), 0, "past the last stage"),
    "no_enabled_strategy": (plan(stage("momentum", enabled=False)), 0, "no enabled strategy stage"),
    "outside_strategies": (plan(body("sorte/core.py", "x", "return 1")), 0, "outside strategies/"),
    "dotdot": (plan(body("strategies/../sorte/core.py", "x", "return 1")), 0, "'..'"),
    "absolute": (plan(body("/etc/passwd.py", "x", "return 1")), 0, "absolute"),
    "not_python": (plan(addf("strategies/notes.txt", HELPER)), 0, "outside strategies/"),
    "missing_file": (plan(body("strategies/ghost.py", "decide", "return 1")), 0, "does not exist"),
    "missing_function": (plan(body(MOM, "nothing", "return 1")), 0, "not found"),
    "missing_method": (plan(body(MOM, "Foo.bar", "return 1")), 0, "not found"),
    "body_not_parsing": (plan(body(MOM, "lookback", "return (")), 0, "does not parse"),
    "signature_not_parsing": (plan(body(MOM, "lookback", "return 1", signature="(p,,)")), 0, "signature"),
    "body_breaks_import": (plan(body(MOM, "lookback", "return undefined_name")), None, None),
    "function_exists": (plan(addf(MOM, "def decide(f, p):\n    return 1\n")), 0, "already exists"),
    "two_functions": (plan(addf(MOM, "def a():\n    pass\n\n\ndef b():\n    pass\n")), 0, "exactly one"),
    "remove_required": (plan({"op": "remove_function", "file": MOM, "name": "decide"}), 0, "required"),
    "remove_referenced": (
        plan(
            addf(BRK, HELPER),
            body(BRK, "lookback", "return band_width(p.period, 0) + 1"),
            {"op": "remove_function", "file": BRK, "name": "band_width"},
        ),
        2,
        "still referenced",
    ),
    "import_forbidden_module": (plan(imp(MOM, "os")), 0, "not allowed"),
    "import_requests": (plan(imp(MOM, "requests")), 0, "not allowed"),
    "eval_in_body": (plan(body(MOM, "lookback", "return eval('1')")), 0, "eval"),
    "exec_in_function": (plan(addf(MOM, "def x():\n    exec('1')\n")), 0, "exec"),
    "dunder_import": (plan(body(MOM, "lookback", "return __import__('os').getpid()")), 0, "__import__"),
    "subprocess_in_function": (
        plan(addf(MOM, "def x():\n    import subprocess\n    return subprocess\n")),
        0,
        "subprocess",
    ),
    "os_system": (plan(addf(MOM, "def x(os):\n    return os.system('ls')\n")), 0, ".system"),
    "os_system_via_alias": (plan(addf(MOM, "def x(o):\n    return o.system('ls')\n")), 0, ".system"),
    "remove_missing_function": (
        plan({"op": "remove_function", "file": MOM, "name": "ghost"}),
        0,
        "function ghost not found in strategies/momentum.py",
    ),
    "open_for_writing": (plan(addf(MOM, "def x():\n    return open('f', 'w')\n")), 0, "'open' is not an allowed name"),
    "socket_in_test": (plan(test("tests/strategies/test_net.py", "import socket\n")), 0, "socket"),
    "urllib_in_test": (plan(test("tests/strategies/test_net.py", "from urllib.request import urlopen\n")), 0, "urllib"),
    "existing_test": (plan(test("tests/strategies/test_old.py", "def test_x():\n    pass\n")), 0, "existing test"),
    "test_outside_area": (plan(test("tests/test_new.py", TEST_SRC)), 0, "outside tests/strategies/"),
    # the guardian accepts new tests only directly in tests/strategies/: the editor writes no other
    "test_in_subfolder": (plan(test("tests/strategies/new/test_deep.py", TEST_SRC)), 0, "no subfolder"),
    "strategy_in_subfolder": (plan(body("strategies/sub/mod.py", "lookback", "return 1")), 0, "no subfolder"),
    "test_bad_name": (plan(test("tests/strategies/helper.py", TEST_SRC)), 0, "must start with 'test_'"),
    "test_not_parsing": (plan(test("tests/strategies/test_bad.py", "def (:\n")), 0, "parse"),
    "strategy_exists": (plan({"op": "add_strategy", "name": "momentum"}), 0, "already exists"),
    "strategy_reserved": (plan({"op": "add_strategy", "name": "prompts"}), 0, "reserved"),
    "strategy_bad_param": (
        plan({"op": "add_strategy", "name": "t2", "params": {"period": 0}}),
        0,
        "outside its bounds",
    ),
    "prompt_unknown": (plan({"op": "edit_prompt", "prompt": "nope", "template": "{symbol}"}), 0, "no entry"),
    "prompt_bad_placeholder": (plan({"op": "edit_prompt", "prompt": "risk", "template": "{secret}"}), 0, "placeholder"),
    "prompt_bad_template": (plan({"op": "edit_prompt", "prompt": "risk", "template": "{"}), 0, "not a valid template"),
    "late_failure_writes_nothing": (
        plan(sp("momentum", "fast", 12), stage("technical", threshold=0.6), body(MOM, "zzz", "pass")),
        2,
        "not found",
    ),
}

MALFORMED = {
    "not_json": "{summary: 1",
    "empty_ops": json.dumps({"summary": "x", "ops": []}),
    "unknown_op": json.dumps(plan({"op": "delete_everything"})),
    "missing_field": json.dumps(plan({"op": "set_param", "strategy": "momentum"})),
    "wrong_type_value": json.dumps(plan(sp("momentum", "fast", "ten"))),
    "wrong_type_threshold": json.dumps(plan(stage("technical", threshold="high"))),
    "threshold_out_of_range": json.dumps(plan(stage("technical", threshold=1.5))),
    "extra_field": json.dumps(plan({**sp("momentum", "fast", 3), "force": True})),
    "bad_strategy_name": json.dumps(plan(sp("../x", "fast", 3))),
    "stage_without_change": json.dumps(plan(stage("technical"))),
    "empty_summary": json.dumps({"summary": "", "ops": [{"op": "set_min_confidence", "value": 0.5}]}),
    "ops_not_list": json.dumps({"summary": "x", "ops": {"op": "set_min_confidence", "value": 0.5}}),
}


def _apply_json(raw: dict, root: Path, **kw: object):
    return apply_plan(load_plan(json.dumps(raw)), root, **kw)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_plan_applies_imports_and_is_idempotent(tree: Path, snap, name: str) -> None:
    before = snap(tree)
    result = _apply_json(VALID[name], tree)
    after = snap(tree)
    assert result.changed, "a valid plan changes something"
    assert {rel for rel in after if after[rel] != before.get(rel)} == set(result.changed)
    for rel, (old, new) in result.changed.items():
        assert before.get(rel, b"").decode() == old and after[rel].decode() == new
        ast.parse(new)
        assert f"b/{rel}" in result.diff
    for rel in result.changed:
        stem = Path(rel).stem
        if rel.startswith("strategies/") and stem not in NOT_STRATEGIES:
            read_param_specs(tree / rel)
            load_strategy(stem, tree / "strategies")
    build_cascade(read_cascade(tree / "strategies/cascade.py"), tree / "strategies")
    again = _apply_json(VALID[name], tree)
    assert again.changed == {} and again.diff == ""
    assert snap(tree) == after


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_plan_is_refused_and_nothing_is_written(tree: Path, snap, name: str) -> None:
    raw, index, reason = INVALID[name]
    before = snap(tree)
    with pytest.raises(EditRefused) as info:
        _apply_json(raw, tree)
    if index is not None:
        assert info.value.op_index == index
        assert info.value.op_kind == raw["ops"][index]["op"]
        assert f"operation {index} ({info.value.op_kind})" in str(info.value)
    if reason is not None:
        assert reason in info.value.reason
    assert snap(tree) == before


def _git_state(repo: Path) -> dict[str, object]:
    """Everything a refused plan must leave as it was: refs, worktrees, HEAD, index, stash,
    reachable commits, and every file of the user's checkout (.git itself aside)."""
    return {
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "head": git(repo, "symbolic-ref", "HEAD") + git(repo, "rev-parse", "HEAD"),
        "commits": git(repo, "rev-list", "--all", "--reflog", "--count"),
        "status": git(repo, "status", "--porcelain", "--ignored", "--untracked-files=all"),
        "stash": git(repo, "stash", "list"),
        "worktree_admin": sorted(p.name for p in (repo / ".git" / "worktrees").glob("*")),
        "files": {
            p.relative_to(repo).as_posix(): p.read_bytes()
            for p in sorted(repo.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(repo).parts
        },
    }


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_plan_through_the_git_service_leaves_no_trace(
    git_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The same refusals on the git-backed path: no branch, commit, worktree or ref is left,
    and the user's checkout is unchanged."""
    monkeypatch.chdir(tmp_path)  # no stray ./sorte.yaml or .env
    settings = Settings(strategies_dir=git_tree / "strategies", data_dir=tmp_path / "var")
    raw, index, reason = INVALID[name]
    before = _git_state(git_tree)
    with pytest.raises(EditRefused) as info:
        branches.edit_on_branch(
            settings, load_plan(json.dumps(raw)), "a refused request", run_id=name.replace("_", "-")
        )
    if index is not None:
        assert info.value.op_index == index
    if reason is not None:
        assert reason in info.value.reason
    assert _git_state(git_tree) == before
    assert [p.name for p in (tmp_path / "var" / "worktrees").iterdir()] == [".lock"]


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_plan_is_refused(tree: Path, snap, name: str) -> None:
    before = snap(tree)
    with pytest.raises(ValidationError):
        EditPlan.model_validate_json(MALFORMED[name])
    with pytest.raises(EditRefused):
        load_plan(MALFORMED[name])
    assert snap(tree) == before


def test_dry_run_returns_the_diff_and_writes_nothing(tree: Path, snap) -> None:
    before = snap(tree)
    dry = _apply_json(VALID["mixed"], tree, write=False)
    assert snap(tree) == before
    real = _apply_json(VALID["mixed"], tree)
    assert dry.changed == real.changed and dry.diff == real.diff and real.summary == "test plan"


def test_set_param_changes_exactly_one_line(tree: Path) -> None:
    result = _apply_json(plan(sp("momentum", "stop_loss", 0.035)), tree)
    (old, new) = result.changed[MOM]
    removed = [line for line in result.diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added = [line for line in result.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert removed == ['-        "default": 0.02,'] and added == ['+        "default": 0.035,']
    assert len(old.splitlines()) == len(new.splitlines())


def test_set_stage_changes_one_line_and_moving_keeps_layout(tree: Path) -> None:
    original = (tree / "strategies/cascade.py").read_text()
    _apply_json(plan(stage("technical", position=0)), tree)
    moved = (tree / "strategies/cascade.py").read_text()
    assert sorted(original.splitlines()) == sorted(moved.splitlines())
    assert read_cascade(tree / "strategies/cascade.py").stages[0].name == "technical"


def test_replace_body_keeps_comments_elsewhere(tree: Path) -> None:
    original = (tree / MOM).read_text()
    _apply_json(VALID["replace_lookback"], tree)
    edited = (tree / MOM).read_text()
    assert "# Conviction: the move over the slow window" in edited
    assert edited.replace("+ 5", "+ 1") == original


def test_add_function_appends_without_touching_existing_bytes(tree: Path) -> None:
    original = (tree / BRK).read_text()
    _apply_json(VALID["add_function"], tree)
    edited = (tree / BRK).read_text()
    assert edited.startswith(original) and edited.endswith(HELPER)
    assert "# why: a normalised width" in edited


def test_remove_function_restores_the_original_file(tree: Path) -> None:
    original = (tree / MOM).read_text()
    _apply_json(plan(addf(MOM, "def unused(x):\n    return x\n")), tree)
    _apply_json(plan({"op": "remove_function", "file": MOM, "name": "unused"}), tree)
    assert (tree / MOM).read_text() == original


def test_stage_can_gain_a_missing_key(tree: Path) -> None:
    path = tree / "strategies/cascade.py"
    path.write_text(path.read_text().replace(', "weight": 1.0, "enabled": True}', "}", 1))
    _apply_json(plan(stage("momentum", weight=2.0, enabled=True)), tree)
    momentum = read_cascade(path).stages[0]
    assert momentum.weight == 2.0 and momentum.enabled is True


def test_symlink_leaving_the_tree_is_refused(tree: Path, snap) -> None:
    os.symlink(tree / "sorte/core.py", tree / "strategies/evil.py")
    before = snap(tree)
    with pytest.raises(EditRefused, match="symlink"):
        _apply_json(plan(addf("strategies/evil.py", HELPER)), tree)
    assert snap(tree) == before


def test_symlinked_test_folder_is_refused(tree: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, tree / "tests/strategies/linked")
    with pytest.raises(EditRefused, match="symlink"):
        _apply_json(plan(test("tests/strategies/linked/test_x.py", TEST_SRC)), tree)
    assert not list(outside.iterdir())


def test_ambiguous_function_is_refused(tree: Path) -> None:
    path = tree / MOM
    path.write_text(path.read_text() + "\n\ndef lookback(p):\n    return 3\n")
    with pytest.raises(EditRefused, match="ambiguous"):
        _apply_json(VALID["replace_lookback"], tree)


def test_method_body_can_be_replaced(tree: Path) -> None:
    path = tree / BRK
    path.write_text(path.read_text() + "\n\nclass Helper:\n    def width(self):\n        return 1\n")
    _apply_json(plan(body(BRK, "Helper.width", "return 2")), tree)
    assert "    def width(self):\n        return 2\n" in path.read_text()


def test_add_strategy_is_listed_and_loads(tree: Path) -> None:
    _apply_json(VALID["add_strategy_params"], tree)
    strategy = load_strategy("slow_trend", tree / "strategies")
    assert strategy.params.period == 60 and strategy.description == "Slow SMA trend."


def test_protected_file_change_is_detected_and_rolled_back(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sorte.editing.workspace as workspace_module

    real_write = workspace_module.atomic_write

    def sneaky(path: Path, text: str) -> None:
        real_write(path, text)
        (tree / "guardian/rules.yaml").write_text("rules: [weakened]\n")

    monkeypatch.setattr(workspace_module, "atomic_write", sneaky)
    original = (tree / MOM).read_text()
    with pytest.raises(EditRefused, match="protected files changed: guardian/rules.yaml"):
        _apply_json(VALID["stop_loss"], tree)
    assert (tree / MOM).read_text() == original


def test_schema_is_json_serialisable_and_round_trips() -> None:
    schema = EditPlan.model_json_schema()
    assert "discriminator" in json.dumps(schema)
    assert all(d["required"][0] == "op" for d in schema["$defs"].values())
    for raw in VALID.values():
        parsed = load_plan(json.dumps(raw))
        assert load_plan(parsed.model_dump_json()) == parsed


def test_suite_size() -> None:
    assert len(VALID) + len(INVALID) + len(MALFORMED) >= 50


def test_replace_body_keeps_its_own_comments_and_empty_blank_lines(tree: Path) -> None:
    text = "# why: longer warm-up\nn = max(p.fast, p.slow)\n\nreturn n + 2\n# end of lookback\n"
    _apply_json(plan(body(MOM, "lookback", text)), tree)
    edited = (tree / MOM).read_text()
    expected = "    # why: longer warm-up\n    n = max(p.fast, p.slow)\n\n    return n + 2\n    # end of lookback\n"
    assert expected in edited


def test_add_function_keeps_comments_above_the_def(tree: Path) -> None:
    _apply_json(plan(addf(BRK, "# why: shared by decide\n" + HELPER)), tree)
    assert (tree / BRK).read_text().endswith("\n\n\n# why: shared by decide\n" + HELPER)


def test_enabling_an_llm_stage_without_its_prompt_is_refused(tree: Path, snap) -> None:
    cascade = tree / "strategies/cascade.py"
    cascade.write_text(cascade.read_text().replace('"prompt": "sentiment"', '"prompt": "missing"'))
    before = snap(tree)
    with pytest.raises(EditRefused, match="no prompt 'missing'") as info:
        _apply_json(plan(stage("sentiment", enabled=True)), tree)
    assert info.value.op_index == 0 and snap(tree) == before


def test_load_plan_names_the_failing_operation() -> None:
    raw = plan({"op": "set_min_confidence", "value": 0.5}, sp("momentum", "fast", "ten"))
    with pytest.raises(EditRefused) as info:
        load_plan(json.dumps(raw))
    assert (info.value.op_index, info.value.op_kind) == (1, "set_param")
    assert "operation 1 (set_param) refused: ops.1.set_param.value" in str(info.value)


def test_remove_function_takes_its_comment_and_keeps_the_rest(tree: Path) -> None:
    path = tree / BRK
    original = path.read_text()
    path.write_text(
        original.replace("\n\ndef features(", "\n\n# helper comment\ndef helper():\n    return 1\n\n\ndef features(", 1)
    )
    _apply_json(plan({"op": "remove_function", "file": BRK, "name": "helper"}), tree)
    assert path.read_text() == original


def test_a_nested_helper_file_is_not_edited(tree: Path) -> None:
    """The guardian fails any change below strategies/: the editor does not write one either."""
    helper = tree / "strategies/lib/helpers.py"
    helper.parent.mkdir()
    helper.write_text("def scale(x):\n    return x\n")
    with pytest.raises(EditRefused, match="no subfolder"):
        _apply_json(plan(body("strategies/lib/helpers.py", "scale", "return 2 * x")), tree)
    assert helper.read_text() == "def scale(x):\n    return x\n"


def test_public_surface_is_complete_and_lazy() -> None:
    import sorte.editing as editing

    assert sorted(editing.__all__) == sorted(editing._WHERE)
    for name in editing.__all__:
        assert getattr(editing, name) is not None
    with pytest.raises(AttributeError):
        editing.no_such_name  # noqa: B018
