"""Real processes for the load and fault tests: gunicorn (``app/gunicorn_conf.py``) and
``flask --app wsgi worker``, on the test database, sending SMS to the fake Twilio server.

Each process runs in its own process group with its output in files; :class:`Processes`
stops every one it started (SIGTERM to the group, then SIGKILL), whatever happened."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
STOP_TIMEOUT = 20
READY_TIMEOUT = 60

#: Variables of the pytest process that must not leak into the servers' configuration.
_OWN_PREFIXES = ("FLASK_", "TWILIO_", "SMS_", "DATABASE_URL", "TEST_DATABASE_URL", "WEB_CONCURRENCY", "GUNICORN_",
                 "PROXY_FIX_", "LOGIN_", "PATHWAY", "PUBLIC_BASE_URL", "SECRET_KEY", "DEFAULT_LOCALE", "SESSION_",
                 "WORKFLOWS_DIR", "FORMS_DIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(app, fake, **extra: str) -> dict[str, str]:
    """The environment of a web or background worker: the pytest session's database and secret,
    SMS through ``fake``, leases and reconciliation short enough for a test to see them end."""
    config = fake.gateway_config()
    environment = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    environment.update({
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": app.config["SECRET_KEY"],
        "PATHWAYS_ENV": "development",
        "PUBLIC_BASE_URL": "http://pathways.test",
        "SMS_BACKEND": "twilio",
        "SMS_TIMEOUT_SECONDS": "5",
        "SMS_LEASE_SECONDS": "10",
        "SMS_RECONCILE_AFTER_SECONDS": "1",
        "PYTHONUNBUFFERED": "1",
        **{key: str(config[key]) for key in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER",
                                             "TWILIO_API_BASE_URL")},
        **extra,
    })
    return environment


class Process:
    """A child process in a process group of its own; stdout and stderr go to files."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.out_path = log_dir / f"{name}.out"
        self.err_path = log_dir / f"{name}.err"
        with open(self.out_path, "ab") as out, open(self.err_path, "ab") as err:
            self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err,
                                          stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the process itself (not its group): no cleanup of any kind."""
        os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(timeout=STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left; always waits."""
        if self.alive():
            _signal_group(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(self.pid, signal.SIGKILL)  # children a killed parent left behind, too
        if self.popen.returncode is None:
            self.popen.wait(timeout=STOP_TIMEOUT)

    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (gunicorn's workers, for its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ...
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return sorted(found)


class Gunicorn(Process):
    """``gunicorn -c python:app.gunicorn_conf wsgi:app`` with ``workers`` workers on a free port."""

    def __init__(self, env: dict[str, str], workers: int, log_dir: Path, name: str = "gunicorn"):
        self.port = free_port()
        self.workers = workers
        env = {**env, "WEB_CONCURRENCY": str(workers), "GUNICORN_BIND": f"127.0.0.1:{self.port}",
               "GUNICORN_TIMEOUT": "60"}
        super().__init__(name, [sys.executable, "-m", "gunicorn", "-c", "python:app.gunicorn_conf", "wsgi:app"],
                         env, log_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_pids(self) -> list[int]:
        return children(self.pid)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until every worker is up and ``/health`` answers (the database is reachable)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), f"gunicorn exited ({self.popen.returncode}):\n{self.stderr()[-3000:]}"
            if len(self.worker_pids()) == self.workers and _healthy(self.url):
                return
            time.sleep(0.2)
        raise AssertionError(f"gunicorn not ready after {timeout} s:\n{self.stderr()[-3000:]}")

    def connections(self) -> set[tuple[int, int]]:
        """(worker pid, socket inode) of every client connection a worker holds open now."""
        established = _established(self.port)
        found = set()
        for pid in self.worker_pids():
            try:
                links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            except OSError:  # it just exited
                continue
            found.update((pid, int(link[8:-1])) for link in links
                         if link.startswith("socket:[") and int(link[8:-1]) in established)
        return found

    def access_log(self) -> list[str]:
        """The access log's lines, without the readiness checks (``/health``)."""
        return [line for line in self.stdout().splitlines() if '"' in line and " /health " not in line]


def _established(port: int) -> set[int]:
    """The socket inodes of the open TCP connections to ``port`` on this machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()  # sl, local address, remote address, state, ..., inode
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # ESTABLISHED
                inodes.add(int(fields[9]))
    return inodes


def _healthy(url: str) -> bool:
    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


class BackgroundWorker(Process):
    """``flask --app wsgi worker``: timers and the outbox, polling every half second."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str = "worker"):
        super().__init__(name, [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "--interval", "0.5",
                                "--batch", "10"], env, log_dir)


class Processes:
    """Starts servers and remembers them, so a finalizer can stop every one."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: list[Process] = []
        self._names: dict[str, int] = {}

    def _name(self, base: str) -> str:
        self._names[base] = self._names.get(base, 0) + 1
        return f"{base}-{self._names[base]}"

    def gunicorn(self, env: dict[str, str], workers: int) -> Gunicorn:
        server = Gunicorn(env, workers, self.log_dir, self._name("gunicorn"))
        self.started.append(server)
        server.wait_ready()
        return server

    def worker(self, env: dict[str, str]) -> BackgroundWorker:
        worker = BackgroundWorker(env, self.log_dir, self._name("worker"))
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop()

    def stderr(self) -> dict[str, str]:
        return {p.name: p.stderr() for p in self.started}
