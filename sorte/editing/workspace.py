"""The files an edit plan touches, held in memory while its operations run, and the checked,
atomic write of the result (rolled back when a protected file changed meanwhile)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sorte.editing.plan import EditRefused
from sorte.editing.policy import EDITABLE, PolicyError, check_manifest, check_path

CASCADE = "strategies/cascade.py"
PROMPTS = "strategies/prompts.py"
TEMPLATE = "strategies/_template.py"


class Workspace:
    """The files a plan touches, in memory: read from disk once, then edited here."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.texts: dict[str, str | None] = {}
        self.originals: dict[str, str | None] = {}
        self.last_op: dict[str, int] = {}

    def get(self, rel: str) -> str | None:
        if rel not in self.texts:
            path = self.root / rel
            text = path.read_bytes().decode() if path.is_file() else None
            self.texts[rel] = self.originals[rel] = text
        return self.texts[rel]

    def read(self, rel: str) -> str:
        text = self.get(rel)
        if text is None:
            raise PolicyError(f"{rel} does not exist")
        return text

    def put(self, rel: str, text: str, op_index: int) -> None:
        if text != self.get(rel):
            self.texts[rel] = text
            self.last_op[rel] = op_index

    def changed(self) -> dict[str, tuple[str, str]]:
        return {
            rel: (self.originals[rel] or "", text)
            for rel, text in sorted(self.texts.items())
            if text is not None and text != self.originals[rel]
        }

    def strategy_sources(self) -> dict[str, str]:
        """Every strategies/*.py as it would be after the plan."""
        files = {f"{EDITABLE}/{p.name}" for p in (self.root / EDITABLE).glob("*.py")}
        files |= {rel for rel in self.texts if rel.startswith(f"{EDITABLE}/")}
        return {rel: text for rel in sorted(files) if (text := self.get(rel)) is not None}


def write_changes(
    root: Path, changed: dict[str, tuple[str, str]], manifest: dict[str, str], new_files: set[str]
) -> None:
    """Write every changed file; a protected file changed meanwhile rolls all of them back."""
    written: list[str] = []
    try:
        for rel, (_, after) in changed.items():
            # Checked again right before writing: a symlink could have appeared since the plan was read.
            check_path(rel, root, new_test=rel.startswith("tests/"))
            atomic_write(root / rel, after)
            written.append(rel)
        check_manifest(root, manifest, allowed_new=new_files)
    except PolicyError as exc:
        _restore(root, changed, new_files, written)
        raise EditRefused(None, None, str(exc)) from None


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(text.encode())
    os.chmod(tmp, mode)  # mkstemp creates 0600; keep the file's own mode
    os.replace(tmp, path)


def _restore(root: Path, changed: dict[str, tuple[str, str]], new_files: set[str], written: list[str]) -> None:
    for rel in written:
        if rel in new_files:
            (root / rel).unlink(missing_ok=True)
        else:
            atomic_write(root / rel, changed[rel][0])
