"""The catalogue: read from the files without importing them, with the aliases the interpreter
matches; the template carries aliases and the editor keeps them valid. And the one owner of
paths: default settings see the shipped strategies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sorte import paths
from sorte.config import REPO_ROOT, GitSettings, Settings
from sorte.editing.apply import apply_plan
from sorte.editing.plan import EditPlan
from sorte.errors import ConfigError
from sorte.interpret import Interpreter, build_catalogue
from sorte.runtime.strategy import read_param_specs


def test_default_settings_see_the_shipped_strategies_everywhere() -> None:
    from sorte.agent.nodes.planning import strategies

    settings = Settings()  # no override of any path
    assert paths.repo_root(settings) == REPO_ROOT
    assert paths.strategies_dir(settings) == REPO_ROOT / "strategies"
    assert strategies(settings) == ["breakout", "mean_reversion", "momentum"]
    assert set(build_catalogue(paths.repo_root(settings)).strategies) == {"breakout", "mean_reversion", "momentum"}


def test_a_strategies_folder_outside_a_repository_layout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="git.repo_root"):
        paths.repo_root(Settings(strategies_dir=tmp_path / "mine"))
    explicit = Settings(strategies_dir=tmp_path / "mine", git=GitSettings(repo_root=tmp_path))
    assert paths.strategies_dir(explicit) == tmp_path.resolve() / "strategies"


def _tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "strategies", tmp_path / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_catalogue_never_imports_strategy_code(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    marker = tmp_path / "imported"
    path = tree / "strategies" / "momentum.py"
    path.write_text(path.read_text() + f"\nopen({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\n")
    catalogue = build_catalogue(tree)
    assert catalogue.param("momentum", "stop_loss").value == 0.02
    assert "stop" in catalogue.param("momentum", "stop_loss").aliases
    assert not marker.exists()


def test_a_bad_alias_is_named_and_the_rest_still_reads(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    path = tree / "strategies" / "breakout.py"
    path.write_text(path.read_text().replace('"rompimento",', '"' + "x" * 60 + '",', 1))
    catalogue = build_catalogue(tree)
    assert "breakout" not in catalogue.strategies
    assert any("breakout.py" in p and "ALIASES" in p for p in catalogue.problems), catalogue.problems
    assert Interpreter(catalogue).read("stop do momentum pra 3%").action == "edit"


def test_every_parameter_of_the_template_has_aliases(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    shutil.copy(tree / "strategies" / "_template.py", tree / "strategies" / "fresh.py")
    entry = build_catalogue(tree).strategies["fresh"]
    assert entry.params and all(p.aliases for p in entry.params.values())
    assert any(spec.aliases for spec in read_param_specs(tree / "strategies" / "fresh.py").values())


def test_a_new_strategy_carries_its_aliases_and_the_template_s(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    plan = EditPlan.model_validate(
        {
            "summary": "new",
            "ops": [{"op": "add_strategy", "name": "rsi_trend", "aliases": ["tendência do rsi", "rsi trend"]}],
        }
    )
    apply_plan(plan, tree, write=True)
    entry = build_catalogue(tree).strategies["rsi_trend"]
    assert entry.aliases == ["tendência do rsi", "rsi trend"]
    assert entry.params["stop_loss"].aliases, "the template's parameter aliases came along"
    reading = Interpreter(build_catalogue(tree)).read("stop da tendencia do rsi pra 3%")
    assert reading.plan.ops[0].strategy == "rsi_trend"


def test_an_edit_keeps_the_aliases(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    before = build_catalogue(tree).param("momentum", "stop_loss").aliases
    plan = EditPlan.model_validate(
        {"summary": "s", "ops": [{"op": "set_param", "strategy": "momentum", "name": "stop_loss", "value": 0.03}]}
    )
    apply_plan(plan, tree, write=True)
    after = build_catalogue(tree).param("momentum", "stop_loss")
    assert (after.value, after.aliases) == (0.03, before)


def test_an_invalid_alias_is_refused_by_the_plan_schema() -> None:
    with pytest.raises(ValueError, match="aliases"):
        EditPlan.model_validate(
            {"summary": "new", "ops": [{"op": "add_strategy", "name": "x_y", "aliases": ["line\nbreak"]}]}
        )
