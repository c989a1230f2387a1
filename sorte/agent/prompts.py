"""What the agent tells the coder model (its replies to people are in ``sorte.interpret.replies``)."""

from __future__ import annotations

import json

from sorte.editing.plan import EditPlan

PLAN = """You are Sorte's coder. Turn the trader's request into an EditPlan: typed operations that the editor
applies with LibCST. Only files under strategies/ may change. Never use eval, exec, subprocess, os.system,
sockets, file access or environment variables. Use set_param for declared parameters (respect their bounds).
Answer with one JSON object matching the schema, nothing else.

Request: {request}
Strategy: {strategy}
Declared parameters of {strategy}: {params}
Source of strategies/{strategy}.py:
```python
{source}
```
Lessons from earlier runs:
{lessons}"""

FIX = """Your previous plan could not be used:
{errors}
Answer with a corrected EditPlan (JSON only)."""


def plan_schema() -> str:
    return json.dumps(EditPlan.model_json_schema())
