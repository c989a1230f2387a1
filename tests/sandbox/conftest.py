"""Shared candidates for the sandbox tests: each script misbehaves in one way."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# tests/ is on sys.path (rootdir-less conftests), so this directory would shadow the real
# `sandbox` package as a namespace package: put the repository root first.
_REPO_ROOT = str(Path(__file__).resolve().parents[2])
if sys.path[:1] != [_REPO_ROOT]:
    sys.path.insert(0, _REPO_ROOT)
if getattr(sys.modules.get("sandbox"), "__file__", "") is None:
    del sys.modules["sandbox"]

HAPPY_TEST = "def test_ok():\n    assert 1 + 1 == 2\n"

SCRIPTS: dict[str, str] = {
    "loop.py": "while True:\n    pass\n",
    # 30 GB in 1 MiB steps, each touched: must hit the memory limit long before.
    "alloc.py": (
        "chunks = []\nfor _ in range(30 * 1024):\n    chunks.append(bytearray(1024 * 1024))\nprint('ALLOCATED 30GB')\n"
    ),
    "forkbomb.py": (
        "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        time.sleep(0.01)\n"
    ),
    "net.py": (
        "import socket, sys\n"
        "ok = []\n"
        "for host, port in [('1.1.1.1', 53), ('127.0.0.1', int(sys.argv[1]))]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=1).close()\n"
        "        ok.append(host)\n"
        "    except OSError as exc:\n"
        "        print('blocked', host, type(exc).__name__)\n"
        "if ok:\n"
        "    print('CONNECTED', ok)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    ),
    "shadow.py": (
        "import sys\n"
        "try:\n"
        "    print('SHADOW', open('/etc/shadow').read()[:20])\n"
        "except PermissionError:\n"
        "    sys.exit(3)\n"
    ),
    "env.py": (
        "import os, sys\n"
        "print(dict(os.environ))\n"
        "for path in ['/proc/%s/environ' % sys.argv[1], '/proc/1/environ']:\n"
        "    try:\n"
        "        print(open(path, 'rb').read().decode(errors='replace'))\n"
        "    except OSError as exc:\n"
        "        print('unreadable', path, type(exc).__name__)\n"
    ),
    "write.py": (
        "import os, sys\n"
        "wrote = []\n"
        "for path in ['/usr/sorte_sandbox_evil', '/etc/sorte_sandbox_evil', '/sorte_sandbox_evil',\n"
        "             os.path.join(os.getcwd(), 'sorte_sandbox_evil')]:\n"
        "    try:\n"
        "        with open(path, 'w') as fh:\n"
        "            fh.write('x')\n"
        "        wrote.append(path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, type(exc).__name__)\n"
        "with open('/tmp/scratch.txt', 'w') as fh:\n"
        "    fh.write('fine')\n"
        "os.makedirs('/tmp/out', exist_ok=True)\n"
        "with open('/tmp/out/note.txt', 'w') as fh:\n"
        "    fh.write('TMP_OK')\n"
        "print('WROTE', wrote) if wrote else print('TMP_OK')\n"
        "sys.exit(3 if wrote else 0)\n"
    ),
    "delete.py": (
        "import os, shutil, sys\n"
        "try:\n"
        "    os.remove('test_ok.py')\n"
        "    print('DELETED')\n"
        "    sys.exit(0)\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__, exc.errno)\n"
        "try:\n"
        "    shutil.rmtree('tests')\n"
        "    print('DELETED')\n"
        "    sys.exit(0)\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__, exc.errno)\n"
        "sys.exit(4)\n"
    ),
}

SECRET_NAME = "SORTE_SANDBOX_TEST_SECRET"
SECRET_VALUE = "s3cret-value-that-must-not-leak-7f1c"


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    """A candidate worktree readable by the sandbox user (uid 65534), with a test and every bad script."""
    root = tmp_path / "worktree"
    (root / "tests").mkdir(parents=True)
    (root / "test_ok.py").write_text(HAPPY_TEST)
    (root / "tests" / "test_more.py").write_text(HAPPY_TEST)
    for name, text in SCRIPTS.items():
        (root / name).write_text(text)
    for path in [tmp_path, root, root / "tests"]:
        path.chmod(0o755)
    for path in root.rglob("*.py"):
        path.chmod(0o644)
    return root


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_NAME, SECRET_VALUE)
    assert os.environ[SECRET_NAME] == SECRET_VALUE
    return SECRET_VALUE


@pytest.fixture
def host_listener() -> Iterator[tuple[int, Callable[[], bool]]]:
    """A TCP listener on the host's 127.0.0.1; the callable says whether anyone connected."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)

    def connected() -> bool:
        try:
            conn, _ = srv.accept()
        except BlockingIOError:
            return False
        conn.close()
        return True

    try:
        yield srv.getsockname()[1], connected
    finally:
        srv.close()


@pytest.fixture
def host_still_forks() -> Callable[[], bool]:
    """Says whether the host can still start a process (after a fork bomb ran in the sandbox)."""

    def check() -> bool:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

    return check
