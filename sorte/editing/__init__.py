"""The code editor: typed edit plans applied to ``strategies/`` with LibCST, or refused.

Public surface: ``EditPlan`` (and its operation models), ``load_plan``, ``apply_plan``,
``EditResult``, ``EditRefused``, and the policy helpers ``build_manifest`` /
``check_manifest`` for callers that write files themselves (the git layer).

Names are imported on first use: LibCST takes most of a second to import, and callers
such as ``sorte branches`` only need the git side of this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_SOURCES = {
    "sorte.editing.apply": ("EditResult", "apply_plan", "unified_diff"),
    "sorte.editing.plan": (
        "ALLOWED_IMPORTS",
        "AddFunction",
        "AddImport",
        "AddStrategy",
        "AddTest",
        "EditPlan",
        "EditPrompt",
        "EditRefused",
        "Op",
        "RemoveFunction",
        "ReplaceBody",
        "SetMinConfidence",
        "SetParam",
        "SetStage",
        "load_plan",
    ),
    "sorte.editing.code_policy": ("check_code",),
    "sorte.editing.policy": ("PolicyError", "build_manifest", "check_manifest", "check_path"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}
__all__ = [
    "ALLOWED_IMPORTS",
    "AddFunction",
    "AddImport",
    "AddStrategy",
    "AddTest",
    "EditPlan",
    "EditPrompt",
    "EditRefused",
    "EditResult",
    "Op",
    "PolicyError",
    "RemoveFunction",
    "ReplaceBody",
    "SetMinConfidence",
    "SetParam",
    "SetStage",
    "apply_plan",
    "build_manifest",
    "check_code",
    "check_manifest",
    "check_path",
    "load_plan",
    "unified_diff",
]

if TYPE_CHECKING:
    from sorte.editing.apply import EditResult, apply_plan, unified_diff
    from sorte.editing.code_policy import check_code
    from sorte.editing.plan import (
        ALLOWED_IMPORTS,
        AddFunction,
        AddImport,
        AddStrategy,
        AddTest,
        EditPlan,
        EditPrompt,
        EditRefused,
        Op,
        RemoveFunction,
        ReplaceBody,
        SetMinConfidence,
        SetParam,
        SetStage,
        load_plan,
    )
    from sorte.editing.policy import PolicyError, build_manifest, check_manifest, check_path


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sorte.editing' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
