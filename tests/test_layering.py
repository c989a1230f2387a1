"""The allowed direction of imports between Sorte's components, written down once, and enforced.

Each component sits on a layer; it may import only components on lower layers. Two components on
one layer do not know each other. The thin front-ends (Telegram, the status page) reach the rest of
Sorte through the service layer only, so that they never depend on a component's internals.
Every import counts, including the ones inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sorte", "commander", "guardian", "knowledge", "sandbox", "strategies")

LAYERS: list[set[str]] = [
    {"sorte.errors"},
    {"sorte.settings"},
    {"sorte.config", "sorte.literals", "sorte.indicators"},
    {"sorte.paths", "sorte.logging"},
    {"knowledge", "sandbox", "sorte.github"},
    {"sorte.llm"},
    {"sorte.runtime", "strategies"},
    {"sorte.market"},
    {"sorte.editing"},
    {"guardian", "sorte.interpret", "commander"},
    {"sorte.agent"},
    {"sorte.service"},
    {"sorte.telegram", "sorte.web"},
    {"sorte.up"},
    {"sorte.cli"},
]
LAYER = {component: depth for depth, layer in enumerate(LAYERS) for component in layer}
FRONT_ENDS = {"sorte.telegram", "sorte.web"}
FRONT_END_MAY_USE = {"sorte.service", "sorte.interpret", "sorte.config", "sorte.errors", "sorte.paths", "sorte.logging"}


def component(module: str) -> str | None:
    """The component a dotted module name belongs to: `sorte.x` for the sorte package's parts."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return None
    if parts[0] == "sorte" and len(parts) > 1:
        return f"sorte.{parts[1]}"
    return parts[0]


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute import; `from sorte import x` names `sorte.x`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "sorte":  # `from sorte import __version__` is the package itself
                found += [(node.lineno, _in_sorte(alias.name)) for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return found


def _in_sorte(name: str) -> str:
    is_module = (ROOT / "sorte" / f"{name}.py").exists() or (ROOT / "sorte" / name).is_dir()
    return f"sorte.{name}" if is_module else "sorte"


def violations(source: str, module: str) -> list[str]:
    """What ``source`` (the text of ``module``) imports against the layering."""
    own = component(module)
    if own is None:
        return []
    problems = []
    for line, name in imported_modules(ast.parse(source)):
        other = component(name)
        if other is None or other == own or name == "sorte":
            continue
        if other not in LAYER:
            problems.append(f"{module}:{line} imports {name}: {other} has no layer in tests/test_layering.py")
        elif LAYER[other] >= LAYER[own]:
            where = "the same layer" if LAYER[other] == LAYER[own] else "a higher layer"
            problems.append(f"{module}:{line} imports {name}: {other} is on {where} than {own}")
        elif own in FRONT_ENDS and other not in FRONT_END_MAY_USE:
            problems.append(f"{module}:{line} imports {name}: a front-end goes through sorte.service")
    return problems


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((dotted, path))
    return found


def test_every_component_has_a_layer() -> None:
    components = {component(module) for module, _ in _modules()} - {"sorte"}
    assert components <= set(LAYER), f"give these a layer: {sorted(components - set(LAYER))}"


def test_no_component_imports_upward_sideways_or_around_the_service_layer() -> None:
    problems = [p for module, path in _modules() for p in violations(path.read_text(), module)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("sorte.runtime.engine", "from sorte.agent import runs\n", "on a higher layer"),
        ("commander.engine", "def f():\n    import guardian.validate\n", "on the same layer"),
        ("sorte.telegram.bot", "from commander.deployment import DeploymentError\n", "goes through sorte.service"),
        ("sorte.llm.client", "from sorte import runtime\n", "on a higher layer"),
        ("sorte.editing.apply", "import sorte.nowhere\n", "has no layer"),
    ],
)
def test_the_checker_sees_each_kind_of_violation(module: str, source: str, expected: str) -> None:
    assert any(expected in p for p in violations(source, module)), violations(source, module)


def test_the_checker_allows_downward_imports() -> None:
    source = "from sorte.errors import SorteError\nimport numpy\nfrom sorte.runtime.values import Bar\n"
    assert violations(source, "commander.engine") == []
