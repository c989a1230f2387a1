"""The code editor: typed edit plans applied to ``strategies/`` with LibCST, or refused.

Public surface: ``EditPlan`` (and its operation models), ``load_plan``, ``apply_plan``,
``EditResult``, ``EditRefused``, and the policy helpers ``build_manifest`` /
``check_manifest`` for callers that write files themselves (the git layer).
"""

from sorte.editing.apply import EditResult, apply_plan, unified_diff
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
from sorte.editing.policy import PolicyError, build_manifest, check_code, check_manifest, check_path

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
