"""HTTP for the benchmarks: servers in processes of their own, and concurrent clients.

Both the Pathways app and the *bare* baseline (one Flask endpoint that inserts one row, one that
does one indexed SELECT, on the same database) are served by werkzeug's threaded WSGI server in
a subprocess, so the clients (threads with ``requests`` sessions, in the bench process) do not
share an interpreter with the server.

``python -m bench.servers app|bare PORT`` is the server process (configured by the environment).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import requests

from bench.common import CLIENTS, ROOT, Samples, process_cpu

if TYPE_CHECKING:
    from flask import Flask

ResponseCheck = Callable[[requests.Response], bool]


# -- the bare baseline app ----------------------------------------------------------------------


def bare_app(url: str) -> Flask:
    """One endpoint inserting one row, one doing one indexed SELECT: what any Flask app on this
    database pays for a request, a transaction and a commit."""
    from flask import Flask, request
    from sqlalchemy import create_engine, event, text

    options = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30}
    engine = create_engine(url, **options)
    if url.startswith("sqlite"):  # the same pragmas as the app (app/core/database.py)
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:
            for pragma in ("foreign_keys=ON", "journal_mode=WAL", "busy_timeout=30000"):
                dbapi_connection.execute(f"PRAGMA {pragma}")

    with engine.begin() as conn:
        key = "INTEGER PRIMARY KEY" if url.startswith("sqlite") else "SERIAL PRIMARY KEY"  # as the app's tables
        conn.execute(text(f"CREATE TABLE IF NOT EXISTS bench_bare (id {key}, created_at TIMESTAMP NOT NULL, "
                          "payload TEXT NOT NULL)"))
    app = Flask("bare")

    @app.post("/insert")
    def insert_one():
        payload = "&".join(f"{k}={v}" for k, v in request.form.items(multi=True))
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO bench_bare (created_at, payload) VALUES (:at, :payload)"),
                         {"at": datetime.now(UTC).replace(tzinfo=None), "payload": payload})
        return "inserted", 201

    @app.get("/select/<int:referral_id>")
    def select_one(referral_id: int):
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id, reference, status, updated_at FROM referrals WHERE id = :id"),
                               {"id": referral_id}).first()
        return (f"{row.reference} {row.status}", 200) if row else ("not found", 404)

    @app.get("/ping")
    def ping():
        return "ok"

    return app


def main() -> None:
    """Serve ``app`` (Pathways, configured by the environment) or ``bare`` on 127.0.0.1:PORT."""
    import os

    from werkzeug.serving import make_server

    kind, port = sys.argv[1], int(sys.argv[2])
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if kind == "bare":
        from app.config import _database_url

        application = bare_app(_database_url(os.environ["DATABASE_URL"]))
    else:
        from app import create_app

        application = create_app()
    make_server("127.0.0.1", port, application, threaded=True).serve_forever()


# -- running them --------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process (``app`` or ``bare``) on the database of ``env``; ``.url`` once started."""

    def __init__(self, kind: str, env: dict[str, str]) -> None:
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "PUBLIC_BASE_URL": self.url}
        self.public_base_url = env["PUBLIC_BASE_URL"]
        self.process = subprocess.Popen([sys.executable, "-m", "bench.servers", kind, str(self.port)], cwd=ROOT,
                                        env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + ("/ping" if kind == "bare" else "/login"), timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start (exit code {self.process.poll()})")
            time.sleep(0.2)

    def stop(self) -> None:
        """Terminate the server process (killed if it does not stop within 10 s)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Stack:
    """The Pathways server and the bare server on one database, started when first needed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._servers: dict[str, Server] = {}

    def server(self, kind: str) -> Server:
        if kind not in self._servers:
            self._servers[kind] = Server(kind, self.env)
        return self._servers[kind]

    @property
    def app(self) -> Server:
        return self.server("app")

    @property
    def bare(self) -> Server:
        return self.server("bare")

    def close(self) -> None:
        """Stop the servers (a later use starts them again)."""
        for server in self._servers.values():
            server.stop()
        self._servers.clear()


# -- clients ---------------------------------------------------------------------------------------


def drive(job: Callable[[requests.Session, int], requests.Response], count: int, *, ok: ResponseCheck,
          server: Server | None = None, clients: int = CLIENTS,
          setup: Callable[[requests.Session], None] | None = None) -> Samples:
    """``count`` requests by ``clients`` concurrent clients (a thread and a session each), the
    n-th being ``job(session, n)``. ``setup`` (a login) runs before the clock starts; the CPU
    time of ``server``'s process is read before and after."""
    lock, taken = threading.Lock(), iter(range(count))
    latencies: list[float] = []
    errors: list[str] = []
    ready = threading.Barrier(clients + 1)

    def client() -> None:
        session = requests.Session()
        try:
            if setup is not None:
                setup(session)
        except BaseException:
            ready.abort()
            raise
        ready.wait()
        while True:
            with lock:
                n = next(taken, None)
            if n is None:
                return
            start = time.perf_counter()
            response = job(session, n)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if not ok(response):
                    errors.append(f"{response.status_code} {response.text[:200]!r}")

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    start, cpu = time.perf_counter(), process_cpu(server.process.pid) if server else None
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    used = process_cpu(server.process.pid) if server and cpu is not None else None
    samples = Samples(latencies, wall, len(errors), used - cpu if used is not None else None)
    if errors:
        print(f"  {len(errors)} unexpected responses, e.g. {errors[0]}", flush=True)
    return samples


def status(*codes: int) -> ResponseCheck:
    """A check that a response has one of these status codes."""
    return lambda response: response.status_code in codes


_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(session: requests.Session, url: str) -> str:
    """The CSRF token of the page at ``url`` (every page has one, in the menu's logout form)."""
    match = _CSRF.search(session.get(url).text)
    if match is None:
        raise RuntimeError(f"no CSRF token on {url}")
    return match.group(1) or match.group(2)


def login(session: requests.Session, base: str, email: str, password: str) -> str:
    """Log in through the login form; returns a CSRF token valid for the session's forms."""
    token = csrf_token(session, base + "/login")
    response = session.post(base + "/login", data={"email": email, "password": password, "csrf_token": token},
                            allow_redirects=False)
    if response.status_code != 302:
        raise RuntimeError(f"login as {email} failed: {response.status_code}")
    return csrf_token(session, base + "/")


if __name__ == "__main__":
    main()
