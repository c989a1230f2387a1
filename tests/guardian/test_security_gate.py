from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from guardian import run_security_gate, scan_diff_for_secrets, subprocess_runner
from sorte.config import REPO_ROOT

FAKE_KEY = "sk-" + "abcDEF1234567890ghijKLMN5678"  # built at runtime: no literal secret in this file

BAD_STRATEGY = '''"""A strategy copy that breaks every rule."""
import socket
import subprocess

import numpy as np


def features(bars, p):
    close = bars.close
    x = eval("1 + 1")
    subprocess.run(["ls"])
    mod = __import__("os")
    with open("/tmp/leak.txt", "w") as fh:
        fh.write("x")
    future = np.roll(close, -1)
    nxt = [close[i + 1] for i in range(len(close) - 1)]
    return {"close": close, "future": future}


def decide(f, p):
    ahead = f["close"].shift(-1)
    return ahead, 0, ""
'''


# Strategies that reach outside their data: each must be reported by the named rule.
SNOOPING_STRATEGIES = {
    "env_reader": (
        "sorte-no-env",
        '''"""Reads the process environment."""
import os

import numpy as np


def features(bars, p):
    scale = float(os.environ.get("SCALE", "1"))
    return {"close": np.asarray(bars.close) * scale}
''',
    ),
    "shadow_reader": (
        "sorte-no-file-read",
        '''"""Reads a file it has no business reading."""
import numpy as np


def features(bars, p):
    with open("/etc/shadow") as fh:
        salt = len(fh.read())
    return {"close": np.asarray(bars.close) + salt}
''',
    ),
    "getenv_reader": (
        "sorte-no-env",
        '''"""Reads one variable of the process environment."""
import os

import numpy as np


def features(bars, p):
    key = os.getenv("EXCHANGE_API_KEY", "")
    return {"close": np.asarray(bars.close), "leak": np.full(len(bars.close), len(key))}
''',
    ),
}


def _candidate(tmp_path: Path, name: str, source: str) -> Path:
    wt = tmp_path / "wt"
    shutil.copytree(REPO_ROOT / "strategies", wt / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    (wt / "strategies" / f"{name}.py").write_text(source)
    return wt


def test_secret_scan_of_diff_redacts_value() -> None:
    diff = (
        "diff --git a/strategies/momentum.py b/strategies/momentum.py\n"
        "--- a/strategies/momentum.py\n+++ b/strategies/momentum.py\n@@ -1,2 +1,4 @@\n"
        ' """doc"""\n'
        f'+OPENAI = "{FAKE_KEY}"\n'
        "+-----BEGIN RSA PRIVATE KEY-----\n"
        " import numpy as np\n"
    )
    findings = scan_diff_for_secrets(diff)
    assert [(f.rule, f.file, f.line) for f in findings] == [
        ("secret-openai-key", "strategies/momentum.py", 2),
        ("secret-private-key", "strategies/momentum.py", 3),
    ]
    assert all(FAKE_KEY not in f.message for f in findings)
    assert scan_diff_for_secrets("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n" + f'-OLD = "{FAKE_KEY}"\n') == []


def test_diff_secret_fails_gate_without_tools(tmp_path: Path) -> None:
    result = run_security_gate(
        subprocess_runner, tmp_path, [], diff=f"+++ b/strategies/a.py\n@@ -0,0 +1 @@\n+KEY = '{FAKE_KEY}'\n"
    )
    assert result.status == "fail"
    assert FAKE_KEY not in result.model_dump_json()


@pytest.mark.slow
def test_bad_strategy_is_caught(tmp_path: Path) -> None:
    wt = _candidate(tmp_path, "evil", BAD_STRATEGY)
    diff = f"+++ b/strategies/evil.py\n@@ -0,0 +1,2 @@\n+x = 1\n+TOKEN = '{FAKE_KEY}'\n"
    result = run_security_gate(subprocess_runner, wt, ["strategies/evil.py"], diff=diff, limits={"timeout_s": 180})
    assert result.status == "fail", result.summary
    rules = {f.rule for f in result.findings}
    for rule in (
        "sorte-no-network",
        "sorte-no-subprocess",
        "sorte-no-eval-exec",
        "sorte-no-dynamic-import",
        "sorte-no-file-write",
        "sorte-lookahead-negative-shift",
        "sorte-lookahead-future-index",
        "secret-openai-key",
    ):
        assert rule in rules, (rule, rules)
    assert any(r.startswith("bandit-") for r in rules), rules
    assert all(f.file in ("strategies/evil.py", "") or f.file.endswith("evil.py") for f in result.findings)
    assert FAKE_KEY not in result.model_dump_json()


@pytest.mark.slow
def test_clean_candidate_passes(tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    shutil.copytree(REPO_ROOT / "strategies", wt / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    src = (wt / "strategies" / "momentum.py").read_text().replace('"default": 0.02', '"default": 0.03')
    (wt / "strategies" / "momentum.py").write_text(src)
    changed = sorted(p.relative_to(wt).as_posix() for p in (wt / "strategies").glob("*.py"))
    diff = '+++ b/strategies/momentum.py\n@@ -18,1 +18,1 @@\n+        "default": 0.03,\n'
    result = run_security_gate(subprocess_runner, wt, changed, diff=diff, limits={"timeout_s": 180})
    assert result.status == "pass", (result.summary, result.findings)


@pytest.mark.slow
def test_strategies_reading_environment_or_files_are_caught(tmp_path: Path) -> None:
    wt = tmp_path / "wt"
    shutil.copytree(REPO_ROOT / "strategies", wt / "strategies", ignore=shutil.ignore_patterns("__pycache__"))
    for name, (_, source) in SNOOPING_STRATEGIES.items():
        (wt / "strategies" / f"{name}.py").write_text(source)
    changed = [f"strategies/{name}.py" for name in SNOOPING_STRATEGIES]
    result = run_security_gate(subprocess_runner, wt, changed, bandit=False, limits={"timeout_s": 180})
    assert result.status == "fail", result.summary
    for name, (rule, _) in SNOOPING_STRATEGIES.items():
        rules = {f.rule for f in result.findings if f.file.endswith(f"{name}.py")}
        assert rule in rules, (name, rule, rules)
    assert "sorte-no-env" not in {f.rule for f in result.findings if f.file.endswith("shadow_reader.py")}
    assert "sorte-no-file-read" not in {f.rule for f in result.findings if not f.file.endswith("shadow_reader.py")}


# --- every changed file: secret scan of texts, the editor's policy, unscanned files -------------


def _must_not_run(command: list[str], worktree: Path, limits: object) -> object:
    raise AssertionError(f"no tool should run: {command}")


def test_secret_scan_reads_every_changed_text_file_and_added_lines_only() -> None:
    texts = {
        ".env": (None, f"SORTE_X=1\nOPENAI_API_KEY={FAKE_KEY}\n"),
        "sorte.yaml": ("a: 1\n", f"a: 1\ntoken: '{FAKE_KEY}'\n"),
        "strategies/momentum.py": (f'OLD = "{FAKE_KEY}"\nA = 1\n', f'OLD = "{FAKE_KEY}"\nA = 2\n'),
    }
    result = run_security_gate(_must_not_run, Path("/nowhere"), [], texts=texts, bandit=False, semgrep=False)
    assert result.status == "fail"
    assert sorted((f.file, f.line, f.rule) for f in result.findings) == [
        (".env", 2, "secret-openai-key"),
        ("sorte.yaml", 2, "secret-openai-key"),
    ]
    assert FAKE_KEY not in result.model_dump_json()


def test_editor_policy_refuses_each_file_by_name() -> None:
    sources = {
        "strategies/momentum.py": "import numpy as np\n\nX = np.zeros(3)\n",
        "strategies/evil.py": "import os\n\nos.system('id')\n",
        "tests/strategies/test_evil.py": "import subprocess\n",
        "strategies/broken.py": "def (:\n",
    }
    result = run_security_gate(_must_not_run, Path("/nowhere"), [], sources=sources, bandit=False, semgrep=False)
    assert result.status == "fail"
    found = {f.file: f for f in result.findings}
    assert set(found) == {"strategies/evil.py", "tests/strategies/test_evil.py", "strategies/broken.py"}
    assert all(f.rule == "code-policy" and f.severity == "critical" for f in found.values())
    assert found["strategies/evil.py"].line == 1 and "os" in found["strategies/evil.py"].message


def test_unscanned_files_fail_the_gate() -> None:
    result = run_security_gate(
        _must_not_run, Path("/nowhere"), [], unscanned={"big.bin": "too large"}, bandit=False, semgrep=False
    )
    assert result.status == "fail"
    assert [(f.file, f.rule) for f in result.findings] == [("big.bin", "unscanned-file")]


@pytest.mark.slow
def test_tools_scan_every_changed_file_and_ignore_suppression_comments(tmp_path: Path) -> None:
    """A top-level module and a conftest.py are scanned like strategies, in a subfolder of the
    scanned tree, and ``# nosec`` / ``# nosemgrep`` silence nothing."""
    tree = tmp_path / "scan" / "tree"
    sources = {
        "helper.py": "import subprocess\n\nsubprocess.run(['id'], shell=True)  # nosec # nosemgrep\n",
        "tests/conftest.py": "import os\n\nos.system('id')  # nosec\n",
        "strategies/momentum.py": "import socket  # nosemgrep\n",
        "sorte.yaml": "live: true\n",
    }
    for rel, text in sources.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    shutil.copy(REPO_ROOT / "guardian" / "rules" / "sorte.yml", tmp_path / "scan" / "rules.yml")
    result = run_security_gate(
        subprocess_runner,
        tmp_path / "scan",
        sorted(sources),
        subdir="tree",
        rules=Path("rules.yml"),
        limits={"timeout_s": 180},
    )
    assert result.status == "fail", result.summary
    by_file: dict[str, set[str]] = {}
    for f in result.findings:
        by_file.setdefault(f.file, set()).add(f.rule)
    assert "sorte-no-subprocess" in by_file["helper.py"] and any(r.startswith("bandit-") for r in by_file["helper.py"])
    assert "sorte-no-subprocess" in by_file["tests/conftest.py"]
    assert any(r.startswith("bandit-") for r in by_file["tests/conftest.py"])
    assert "sorte-no-network" in by_file["strategies/momentum.py"]
    assert set(result.details["files"]) == set(sources)


def test_secret_scan_of_a_hostile_megabyte_line_stays_fast() -> None:
    """An unbounded pattern backtracked quadratically on "tokentoken…": minutes on the host."""
    import time

    t0 = time.perf_counter()
    findings = run_security_gate(
        _must_not_run, Path("/nowhere"), [], texts={"x.py": (None, "token" * 200_000)}, bandit=False, semgrep=False
    ).findings
    assert findings == [] and time.perf_counter() - t0 < 10
