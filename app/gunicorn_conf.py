"""Gunicorn settings for production: ``gunicorn -c python:app.gunicorn_conf wsgi:app``
(``make serve`` runs the migrations first, then this).

Every value can be changed through an environment variable (listed in the README):

- ``WEB_CONCURRENCY``: web worker processes (default ``2 × CPUs + 1``). Workers are
  synchronous: one request at a time each, behind a proxy that buffers slow clients.
- ``GUNICORN_BIND``: where to listen (default ``127.0.0.1:8000``, for a TLS proxy on the same
  machine; a unix socket is ``unix:/run/pathways/gunicorn.sock``).
- ``GUNICORN_TIMEOUT``: a worker silent for this long is killed and replaced (default 30 s);
  ``GUNICORN_GRACEFUL_TIMEOUT``: how long a worker may finish its request on restart or stop.
- ``GUNICORN_MAX_REQUESTS`` / ``GUNICORN_MAX_REQUESTS_JITTER``: each worker is replaced after
  1,000 to 1,100 requests, staggered, so slow leaks cannot build up.
- ``GUNICORN_ACCESS_LOG`` (``-``: standard output; empty: none) and ``GUNICORN_LOG_LEVEL``.

Decisions:

- The app is **not preloaded**: each worker imports it and opens its own database connections
  after the fork, so no pooled connection is ever shared between processes, and ``kill -HUP``
  on the master loads new code. A broken configuration still stops gunicorn at start: the
  first worker fails to boot and the master exits.
- The access log has no query strings, referrers, user agents or client addresses: the method,
  the path, the status, the size, the duration and the worker's pid.
- Proxy headers are trusted in one place only: the app's ``PROXY_FIX_HOPS`` (werkzeug's
  ProxyFix, for exactly that many proxies). Gunicorn itself ignores ``X-Forwarded-*``.
"""

from __future__ import annotations

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]
workers = _int("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1)
worker_class = "sync"
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)
preload_app = False

# ProxyFix (PROXY_FIX_HOPS) is the only reader of the proxy's headers.
secure_scheme_headers: dict[str, str] = {}
forwarded_allow_ips = ""
forwarder_headers = ""
# No control socket: several instances on one machine would share its default path.
control_socket_disable = True
if os.path.isdir("/dev/shm"):  # the workers' heartbeat files, off the disk
    worker_tmp_dir = "/dev/shm"

accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = '%(p)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "pathways"
