"""The agent's durable side records: the audit log (JSONL, every node entered and left), one
JSON view per run for the front-ends, and the deploy requests handed to the commander.

Every write is append-only or atomic (write a temporary file, then rename), so a process
killed mid-write leaves the previous record intact.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from sorte import paths
from sorte.agent.views import RunView

_lock = threading.Lock()


def agent_dir(data_dir: Path) -> Path:
    path = paths.agent_dir(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _audit_file(data_dir: Path) -> Path:
    agent_dir(data_dir)
    return paths.agent_audit(data_dir)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def audit(data_dir: Path, run_id: str, node: str, event: str, **fields: object) -> None:
    """One JSON line per node entered, left or failed."""
    line = json.dumps({"ts": now(), "run_id": run_id, "node": node, "event": event, **fields}, default=str)
    with _lock, (_audit_file(data_dir)).open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_audit(data_dir: Path, run_id: str | None = None) -> list[dict]:
    path = paths.agent_audit(data_dir)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by a crash
            continue
        if run_id is None or row.get("run_id") == run_id:
            rows.append(row)
    return rows


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def save_view(data_dir: Path, view: RunView) -> None:
    folder = agent_dir(data_dir) / "runs"
    folder.mkdir(exist_ok=True)
    view.updated_at = now()
    _atomic(folder / f"{view.run_id}.json", view.model_dump_json(indent=2))


def load_view(data_dir: Path, run_id: str) -> RunView | None:
    path = agent_dir(data_dir) / "runs" / f"{run_id}.json"
    return RunView.model_validate_json(path.read_text(encoding="utf-8")) if path.exists() else None


def list_views(data_dir: Path) -> list[RunView]:
    folder = agent_dir(data_dir) / "runs"
    views = [RunView.model_validate_json(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")]
    return sorted(views, key=lambda v: v.run_id, reverse=True)


def request_deploy(data_dir: Path, run_id: str, commit: str, request: str) -> str:
    """Record the hand-over to the commander once per run (the commander issue consumes these).

    Returns the request id; a resumed run gets the id it recorded before."""
    path = agent_dir(data_dir) / "deploy_requests.jsonl"
    with _lock:
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if row["run_id"] == run_id:
                    return row["id"]
        row = {"id": f"deploy-{run_id}", "ts": now(), "run_id": run_id, "commit": commit, "request": request}
        with path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    return row["id"]
