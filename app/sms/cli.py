"""``flask --app wsgi worker``: run the pathways' due timers and send the SMS outbox
(``--once``: what is due now, then exit)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import uuid

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from app.extensions import db

log = logging.getLogger(__name__)


@click.command("worker")
@click.option("--once", is_flag=True, help="Run and send what is due now, then exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between polls.")
@click.option("--batch", default=50, show_default=True, help="Messages claimed at a time.")
@with_appcontext
def worker_command(once: bool, interval: float, batch: int) -> None:
    """Fire the pathways' due timers, then send queued SMS through the configured gateway
    (SMS_BACKEND), with retries."""
    from app.sms.gateways import get_gateway
    from app.sms.worker import drain_once
    from app.workflow.services import fire_due_timers

    gateway = get_gateway(current_app)
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if once:
        while fire_due_timers(limit=batch) >= batch:  # timers first: they may queue messages
            pass
        while True:  # everything due now, batch by batch, until a batch is not full
            result = drain_once(gateway, worker_id, batch=batch)
            click.echo(f"sent {result.sent}, retried {result.retried}, failed {result.failed}, "
                       f"unknown {result.unknown}, suppressed {result.suppressed}, "
                       f"reconciled {result.reconciled}, requeued {result.requeued}")
            if result.claimed < batch:
                return
    stop = threading.Event()

    def _stop(signum, _frame):
        log.info("sms worker %s: signal %s, stopping after the current batch", worker_id, signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("sms worker %s started", worker_id)
    while not stop.is_set():
        try:
            fire_due_timers(limit=batch)
            drain_once(gateway, worker_id, batch=batch)
        except (OperationalError, InterfaceError) as exc:  # the database is down or restarting: wait
            log.warning("sms worker %s: database unavailable (%s); trying again in %s s", worker_id,
                        type(exc.orig or exc).__name__, interval)
        except Exception:  # anything else must not end the worker either
            log.exception("sms worker %s: drain failed", worker_id)
        finally:
            _end_session()
        stop.wait(interval)
    log.info("sms worker %s stopped", worker_id)


def _end_session() -> None:
    """Roll back whatever the tick left open and give the connection back — also when the
    connection broke meanwhile: the first attempt drops it (and raises), the second finishes."""
    try:
        db.session.remove()
    except SQLAlchemyError:
        log.warning("sms worker: database connection lost; a new one is opened next time")
        db.session.remove()
