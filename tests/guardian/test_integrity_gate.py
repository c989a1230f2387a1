from __future__ import annotations

import shutil
from pathlib import Path

from guardian import run_integrity_gate
from sorte.editing.policy import build_manifest


def _tree(root: Path) -> Path:
    for rel, text in {
        "tests/test_a.py": "def test_a():\n    assert True\n",
        "guardian/rules/sorte.yml": "rules: []\n",
        "sorte/core.py": "X = 1\n",
        "strategies/momentum.py": "A = 1\n",
    }.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_strategy_change_passes(tmp_path: Path) -> None:
    base = _tree(tmp_path / "base")
    cand = tmp_path / "cand"
    shutil.copytree(base, cand)
    (cand / "strategies" / "momentum.py").write_text("A = 2\n")
    result = run_integrity_gate(cand, base)
    assert result.status == "pass", result


def test_protected_changes_fail_naming_files(tmp_path: Path) -> None:
    base = _tree(tmp_path / "base")
    cand = tmp_path / "cand"
    shutil.copytree(base, cand)
    (cand / "guardian" / "rules" / "sorte.yml").write_text("rules: [weakened]\n")
    (cand / "tests" / "test_a.py").unlink()
    (cand / "sorte" / "new.py").write_text("")
    (cand / "tests" / "strategies").mkdir()
    (cand / "tests" / "strategies" / "test_new.py").write_text("def test_n():\n    pass\n")
    result = run_integrity_gate(cand, build_manifest(base), allowed_new={"tests/strategies/test_new.py"})
    assert result.status == "fail"
    got = {(f.file, f.rule) for f in result.findings}
    assert got == {
        ("guardian/rules/sorte.yml", "protected-file-modified"),
        ("tests/test_a.py", "protected-file-deleted"),
        ("sorte/new.py", "protected-file-added"),
    }
    assert "guardian/rules/sorte.yml" in result.summary
