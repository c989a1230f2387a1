"""Hostile strategy code against the operating-system boundary (issue 14, point 1).

These strategies never went through the editor's policy or the guardian: they are what an
attacker would get if every Python-level check failed. Each one runs a probe inside the
strategy worker and reports what it found as its reason, so the test sees exactly what the
code could reach: the environment (a canary secret is set in this process's), the repository's
``.env``, the ledger, the network, other processes, the file system. The boundary holds when
no probe finds the canary, reaches a server, or leaves a file behind, whichever backend
confines the worker (local namespaces; Docker in the slow variant).
"""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from sorte.runtime.strategy_host import StrategyFault, StrategyHost
from sorte.runtime.values import Ohlcv
from tests.adversarial.canary import CANARY, assert_no_canary, set_canary

TEMPLATE = '''\
"""A hostile probe."""
import numpy as np
import os

PARAMS = {{"x": {{"type": "int", "default": 1, "min": 0, "max": 10, "doc": "unused"}}}}


def lookback(p):
    return 1


def features(bars, p):
    return {{"n": len(bars.close)}}


def _probe():
{body}


def decide(f, p):
    n = f["n"]
    try:
        out = "ok: " + str(_probe())
    except BaseException as exc:
        out = "refused: " + type(exc).__name__ + ": " + str(exc)
    return np.zeros(n), np.zeros(n, dtype=np.int8), np.array([out[:280]] * n, dtype=object)
'''

#: The root of the confined process holds only these (and the interpreter's own path).
#: The system folders, plus the top folder of each interpreter prefix: the worker needs the way to
#: its own interpreter, wherever the checkout lives (/work/main here, /check/work/main in CI).
ALLOWED_ROOT = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "sbin", "tmp", "usr", "root", "opt"} | {
    Path(prefix).resolve().parts[1] for prefix in (sys.prefix, sys.base_prefix) if len(Path(prefix).resolve().parts) > 1
}


def strategy_source(body: str) -> str:
    return TEMPLATE.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))


def bars(n: int = 5) -> Ohlcv:
    x = np.linspace(100.0, 101.0, n)
    return Ohlcv(np.arange(n, dtype=float) * 60.0, x, x + 0.5, x - 0.5, x, np.ones(n), 60.0)


class _Listener:
    """A loopback TCP and UDP server that records whether anything reached it."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.tcp.settimeout(0.2)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        self.hits: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            for sock, kind in ((self.tcp, "tcp"), (self.udp, "udp")):
                try:
                    if kind == "tcp":
                        conn, _ = sock.accept()
                        conn.close()
                    else:
                        sock.recvfrom(65536)
                    self.hits.append(kind)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.tcp.close()
        self.udp.close()


def probes(ctx: dict[str, str]) -> dict[str, str]:
    """name -> probe body; ``ctx`` holds the paths and ports of this run."""
    return {
        "env_values": 'return "|".join(f"{k}={v}" for k, v in os.environ.items())',
        "env_names": 'return ",".join(sorted(os.environ))',
        "parent_environ": "return open(f'/proc/{os.getppid()}/environ', 'rb').read()",
        "pid1_environ": "return open('/proc/1/environ', 'rb').read()",
        "repo_dotenv": f"return open({ctx['repo'] + '/.env'!r}).read()",
        "repo_listing": f"return os.listdir({ctx['repo']!r})",
        "ledger_read": f"return open({ctx['ledger']!r}, 'rb').read()",
        "data_dir_listing": f"return os.listdir({ctx['data']!r})",
        "home_listing": f"return os.listdir({ctx['home']!r})",
        "root_listing": "return ','.join(sorted(os.listdir('/')))",
        "shadow": "return open('/etc/shadow').read()",
        "write_repo": f"open({ctx['repo'] + '/pwned.py'!r}, 'w').write('x'); return 'written'",
        "write_data_dir": f"open({ctx['data'] + '/pwned'!r}, 'w').write('x'); return 'written'",
        "write_ledger": f"open({ctx['ledger']!r}, 'ab').write(b'x'); return 'written'",
        "write_box": "open('/tmp/box/lib/strategies/pwned.py', 'w').write('x'); return 'written'",
        "write_usr": "open('/usr/pwned', 'w').write('x'); return 'written'",
        "write_host_tmp": f"open({ctx['host_tmp_marker']!r}, 'w').write('x'); return 'written'",
        "dev_shm": "open('/dev/shm/pwned', 'w').write('x'); return 'written'",
        "tcp_loopback": f"""
            import socket
            s = socket.create_connection(("127.0.0.1", {ctx["tcp_port"]}), timeout=2)
            s.sendall(b"hello")
            return "connected"
        """,
        "udp_loopback": f"""
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"hello", ("127.0.0.1", {ctx["udp_port"]}))
            return "sent"
        """,
        "docker_socket": """
            import socket
            s = socket.socket(socket.AF_UNIX)
            s.connect("/var/run/docker.sock")
            return "connected"
        """,
        "subprocess_env": """
            import subprocess
            return subprocess.run(["/usr/bin/env"], capture_output=True, timeout=10).stdout
        """,
        "kill_parent": "os.kill(os.getppid(), 9); return 'killed'",
        "kill_pid1": "os.kill(1, 0); return 'signalled'",
        "setuid_root": "os.setuid(0); return 'root'",
        "chroot_escape": "os.chroot('/tmp'); return 'chrooted'",
        "proc_mem": "return open('/proc/1/mem', 'rb').read(1)",
        "ssh_keys": "return os.listdir('/root/.ssh')",
    }


#: What each probe must get: "refused" (an exception) or a predicate on what it returned.
def _no_secret_names(text: str) -> bool:
    names = set(text.removeprefix("ok: ").split(","))
    return not any(n.startswith(("SORTE_", "CANARY", "AWS_", "GITHUB")) for n in names)


def _only_allowed_root(text: str) -> bool:
    return set(text.removeprefix("ok: ").split(",")) <= ALLOWED_ROOT


def _only_interpreter_path(text: str) -> bool:
    """A folder that exists in the confined root only as the way to the interpreter lists that way."""
    import ast
    import sys

    parts = {part for prefix in (sys.prefix, sys.base_prefix) for part in Path(prefix).resolve().parts}
    return text.startswith("refused: ") or set(ast.literal_eval(text.removeprefix("ok: "))) <= parts


#: write_host_tmp writes to the worker's private /tmp: allowed there, and never the host's (checked below).
EXPECT_OK = {"env_values", "env_names", "root_listing", "subprocess_env", "write_host_tmp"}
CHECKS = {"env_names": _no_secret_names, "root_listing": _only_allowed_root}
#: Probes that may see a folder only because the interpreter lives below it.
ON_THE_WAY = {"home_listing": _only_interpreter_path, "repo_listing": _only_interpreter_path}
#: In a container the worker has its own PID and network namespaces: signalling its "parent" or
#: pid 1, reading pid 1's environment (its own) and sending UDP to its own loopback stay inside.
OWN_NAMESPACE = {"kill_parent", "kill_pid1", "pid1_environ", "udp_loopback", "write_host_tmp"}
DOCKER_ROOT = ALLOWED_ROOT | {".dockerenv", "proc", "sys"}


@pytest.fixture(scope="module", params=["local", pytest.param("docker", marks=[pytest.mark.slow, pytest.mark.docker])])
def probed(request, tmp_path_factory: pytest.TempPathFactory):
    backend = request.param
    if backend == "docker":
        from needs_docker import require_docker

        require_docker()
    mp = pytest.MonkeyPatch()
    set_canary(mp)
    base = tmp_path_factory.mktemp("hostile")
    repo, data = base / "repo", base / "repo" / "var"
    (data / "paper").mkdir(parents=True)
    (repo / ".env").write_text(f"SORTE_EXCHANGE__API_SECRET={CANARY}\n")
    ledger = data / "paper" / "ledger.db"
    ledger.write_bytes(b"SQLite " + CANARY.encode())
    listener = _Listener()
    marker = Path("/tmp") / f"sorte-hostile-{os.getpid()}-{backend}"
    ctx = {
        "repo": str(repo),
        "data": str(data),
        "ledger": str(ledger),
        "home": str(Path.home()),
        "host_tmp_marker": str(marker),
        "tcp_port": str(listener.tcp.getsockname()[1]),
        "udp_port": str(listener.udp.getsockname()[1]),
    }
    strategies = repo / "strategies"
    strategies.mkdir()
    bodies = probes(ctx)
    for name, body in bodies.items():
        (strategies / f"{name}.py").write_text(strategy_source(body))
    before = {p: p.read_bytes() for p in (repo / ".env", ledger)}
    host = StrategyHost(strategies, backend=backend, memory_mb=512).start()
    try:
        found = {}
        for name in bodies:
            s = host.strategy(name)
            found[name] = str(s.signals(bars())[2][-1])
        alive = host.alive
    finally:
        host.close()
        listener.close()
        mp.undo()
    yield {
        "backend": backend,
        "found": found,
        "alive": alive,
        "hits": list(listener.hits),
        "before": before,
        "repo": repo,
        "data": data,
        "marker": marker,
    }
    marker.unlink(missing_ok=True)


CONTEXT_KEYS = ("repo", "data", "ledger", "home", "host_tmp_marker", "tcp_port", "udp_port")
PROBE_NAMES = sorted(probes(dict.fromkeys(CONTEXT_KEYS, "0")))


@pytest.mark.parametrize("name", PROBE_NAMES)
def test_probe_is_contained(probed, name: str) -> None:
    text = probed["found"][name]
    assert_no_canary(text)
    if probed["backend"] == "docker" and name == "root_listing":
        assert set(text.removeprefix("ok: ").split(",")) <= DOCKER_ROOT, text
    elif probed["backend"] == "docker" and name in OWN_NAMESPACE:
        return  # contained by the container's namespaces; the canary check above still applies
    elif name in ON_THE_WAY:
        assert ON_THE_WAY[name](text), f"{name} got through: {text}"
    elif name in EXPECT_OK:
        assert text.startswith("ok: "), text
        check = CHECKS.get(name)
        assert check is None or check(text), text
    else:
        assert text.startswith("refused: "), f"{name} got through: {text}"


def test_nothing_was_reached_written_or_killed(probed) -> None:
    assert probed["alive"], "a probe killed or broke the worker"
    assert probed["hits"] == [], f"the loopback server was reached: {probed['hits']}"
    for path, data in probed["before"].items():
        assert path.read_bytes() == data, f"{path} changed"
    assert not (probed["repo"] / "pwned.py").exists()
    assert not (probed["data"] / "pwned").exists()
    assert not probed["marker"].exists()
    assert not Path("/usr/pwned").exists()


def test_the_worker_sees_no_host_variable(probed) -> None:
    names = set(probed["found"]["env_names"].removeprefix("ok: ").split(","))
    assert names <= {"LANG", "PATH", "HOME", "TMPDIR", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} | {
        "OPENBLAS_NUM_THREADS",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "HOSTNAME",  # Docker sets it
    }


# --- faults: the trusted side survives and says what happened --------------------------------


def _host_with(tmp_path: Path, body: str, **kw) -> StrategyHost:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "bad.py").write_text(strategy_source(body))
    return StrategyHost(strategies, **kw).start()


def _raw_decide(tmp_path: Path, decide_body: str, **kw) -> StrategyHost:
    src = strategy_source("return 1").split("def decide(f, p):")[0]
    src += "def decide(f, p):\n" + textwrap.indent(textwrap.dedent(decide_body).strip(), "    ") + "\n"
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "bad.py").write_text(src)
    return StrategyHost(strategies, **kw).start()


@pytest.mark.parametrize(
    ("decide_body", "message"),
    [
        ('n = f["n"]\nreturn np.full(n, 2.0), np.zeros(n, dtype=np.int8), np.array([""] * n)', "scores must lie"),
        ('n = f["n"]\nreturn np.full(n, -0.1), np.zeros(n, dtype=np.int8), np.array([""] * n)', "scores must lie"),
        ('n = f["n"]\nreturn np.zeros(n), np.full(n, 5), np.array([""] * n)', "sides must be"),
        ('n = f["n"]\nreturn np.zeros(n + 3), np.zeros(n + 3), np.array([""] * (n + 3))', "scores for"),
        ('n = f["n"]\nreturn np.zeros(n - 1), np.zeros(n - 1), np.array([""] * (n - 1))', "scores for"),
        ("raise RuntimeError('boom')", "RuntimeError: boom"),
        ("return None", "TypeError"),
        ("os._exit(3)", "broke the channel"),
    ],
)
def test_an_answer_outside_the_contract_is_a_fault(tmp_path: Path, decide_body: str, message: str) -> None:
    with _raw_decide(tmp_path, "import os\n" + decide_body) as host:
        strategy = host.strategy("bad")
        with pytest.raises(StrategyFault, match=message):
            strategy.signals(bars())


def test_a_hung_strategy_times_out_and_is_killed(tmp_path: Path) -> None:
    with _raw_decide(tmp_path, "while True:\n    pass", call_timeout_s=1.0) as host:
        strategy = host.strategy("bad")
        with pytest.raises(StrategyFault, match="did not answer"):
            strategy.signals(bars())
        assert not host.alive


@pytest.mark.parametrize("backend", ["local", pytest.param("docker", marks=[pytest.mark.slow, pytest.mark.docker])])
def test_a_memory_bomb_ends_in_an_error_or_a_fault(tmp_path: Path, backend: str) -> None:
    if backend == "docker":
        from needs_docker import require_docker

        require_docker()
    with _host_with(tmp_path, "return len(bytearray(8 * 1024 ** 3))", backend=backend, memory_mb=256) as host:
        strategy = host.strategy("bad")
        try:
            reason = str(strategy.signals(bars())[2][-1])
        except StrategyFault:  # the container's memory limit killed the worker
            assert not host.alive
        else:  # the local worker's address-space limit made the allocation fail
            assert reason.startswith("refused: MemoryError"), reason


def test_garbage_on_the_channel_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    body = """
        for fd in range(3, 16):
            try:
                os.write(fd, b"\\xff" * 64)
            except OSError:
                pass
        n = f["n"]
        return np.zeros(n), np.zeros(n, dtype=np.int8), np.array([""] * n)
    """
    with _raw_decide(tmp_path, "import os\n" + textwrap.dedent(body)) as host:
        strategy = host.strategy("bad")
        with pytest.raises(StrategyFault):
            strategy.signals(bars())


def test_printing_does_not_disturb_the_channel(tmp_path: Path) -> None:
    body = """
        print("noise " * 1000)
        n = f["n"]
        return np.full(n, 0.5), np.ones(n, dtype=np.int8), np.array(["fine"] * n)
    """
    with _raw_decide(tmp_path, body) as host:
        score, side, reason = host.strategy("bad").signals(bars())
    assert score.tolist() == [0.5] * 5 and side.tolist() == [1] * 5 and reason.tolist() == ["fine"] * 5


def test_a_strategy_that_fails_to_import_is_named(tmp_path: Path) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    (strategies / "bad.py").write_text(strategy_source("return 1") + "\nraise ImportError('nope')\n")
    from sorte.errors import StrategyError

    with StrategyHost(strategies) as host, pytest.raises(StrategyError, match="'bad' failed to load.*nope"):
        host.strategy("bad")


def test_symlinked_strategy_files_are_refused(tmp_path: Path) -> None:
    strategies = tmp_path / "strategies"
    strategies.mkdir()
    secret = tmp_path / "secret.py"
    secret.write_text(f"X = {CANARY!r}\n")
    (strategies / "linked.py").symlink_to(secret)
    from sorte.errors import StrategyError

    with pytest.raises(StrategyError, match="not a regular file"):
        StrategyHost(strategies).start()
