"""A fresh Pathways database for the benchmarks, and realistic data in it.

:class:`BenchDatabase` makes an empty database (a temporary SQLite file, or the PostgreSQL bench
database's schema dropped and recreated), runs the Alembic migrations, loads the demo directory,
users and pathways, and then:

* walks real GBV referrals through the real services (``referrals.submit_step`` with forms
  validated by formkit), to a given step — these are the *templates*;
* copies a template's rows in bulk (referral, consent, workflow instance with its real state,
  task rows, targets, optionally the answers), with new ids, references and target codes —
  100,000 referrals in well under a minute.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, create_engine, delete, event, func, select, text, update
from werkzeug.datastructures import MultiDict

from bench.common import ROOT, say

SECRET_KEY = "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
TWILIO_AUTH_TOKEN = "bench-twilio-auth-token"
CASEWORKER = "caseworker@demo.test"
PASSWORD = "pathways-demo"

#: A GBV referral for an adult, normal urgency, sent to two matching services (as in the
#: scenarios of tests/workflow): keyed by step id or form key; "@2" picks the first two offered.
GBV_ANSWERS: dict[str, dict] = {
    "consent": {"consent_given": "yes", "given_by": "person",
                "shared_information": ["needs_summary", "contact_details"], "organisation_scope": "any_selected",
                "purpose": ["service_provision", "case_management_follow_up"]},
    "person": {"case_code": "GBV-0001", "full_name": "Sobreviviente Prueba", "age": "28", "sex": "female",
               "languages": ["es"], "status": "migrant", "location": "ve/distrito-capital/caracas",
               "phone": "+58 414 000 0002"},
    "gbv_intake": {"type_of_violence": "physical_assault", "survivor_wishes": "Quiere un lugar seguro para ella.",
                   "safe_contact": "via_caseworker", "trafficking_indicators": "no",
                   "needs": ["safe_shelter", "case_management"], "reason": "Necesita alojamiento seguro esta semana."},
    "safety_assessment": {"immediate_danger": "no", "medical_emergency": "no", "caseworker_urgency": "normal"},
    "select_services": {"chosen_services": "@2"},
    "review": {"confirm_send": "yes", "comments": "Better in the morning."},
}

_REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(n: int, alphabet: str, width: int) -> str:
    digits = []
    for _ in range(width):
        n, d = divmod(n, len(alphabet))
        digits.append(alphabet[d])
    return "".join(reversed(digits))


def formdata(answers: dict) -> MultiDict:
    """Answers as a browser posts them (a list is several values of one name)."""
    return MultiDict([(k, str(item)) for k, v in answers.items() for item in (v if isinstance(v, list) else [v])])


@dataclass
class Walk:
    """A referral walked through the services: its id and the state size after each step."""

    referral_id: int
    #: (step id, len(state) after it) for every completed step, the start first.
    sizes: list[tuple[str, int]]
    #: Bytes of the answers stored in our own table (JSON), personal data included.
    answer_bytes: int


@dataclass
class Due:
    """The referrals whose timer is due, and how to make them due again."""

    instance_ids: list[int]
    referral_ids: list[int]
    state: str
    next_timer_at: datetime


class BenchDatabase:
    """One database engine's run: the app on a fresh database, templates, bulk copies."""

    def __init__(self, kind: str, postgres_url: str | None = None, *, schema: str = "public") -> None:
        """``schema``: on PostgreSQL, another schema of the same database (a second database for
        a baseline, without creating databases)."""
        from app.config import _database_url

        self.kind = kind
        self.label = "SQLite" if kind == "sqlite" else "PostgreSQL"
        self.postgres_url = postgres_url
        self.schema = schema
        self._tmp = tempfile.mkdtemp(prefix="pathways-bench-") if kind == "sqlite" else None
        raw = f"sqlite:///{self._tmp}/bench.db" if kind == "sqlite" else postgres_url
        if kind == "postgresql" and schema != "public":
            raw += ("&" if "?" in raw else "?") + f"options=-csearch_path%3D{schema}"
        self.url: str = _database_url(raw)
        self.app = None
        self._templates: dict[str, Walk] = {}
        self._rng = random.Random(20_26)
        self.waiting = 0
        self.due: Due | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> BenchDatabase:
        """Empty database, migrations, demo data; the app object for in-process work."""
        import logging

        from flask_migrate import upgrade

        from app import create_app
        from app.demo import seed_demo
        from app.extensions import db

        if self.kind == "postgresql":
            self._reset_postgres()
        self.app = create_app(self.config())
        with self.app.app_context():
            upgrade()
            logging.getLogger("alembic").setLevel(logging.WARNING)
            seed_demo()
            db.session.commit()
        return self

    def config(self) -> dict:
        """The app's configuration for in-process work (no CSRF: forms are built directly)."""
        return {"SQLALCHEMY_DATABASE_URI": self.url, "SECRET_KEY": SECRET_KEY, "WTF_CSRF_ENABLED": False,
                "SMS_BACKEND": "console", "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN, "DEMO_PASSWORD": PASSWORD,
                "PUBLIC_BASE_URL": "http://127.0.0.1:5000"}

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a server or worker process on this database."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("FLASK_", "TWILIO_", "SMS_", "DATABASE_URL", "TEST_DATABASE_URL", "PATHWAYS_"))}
        env.update({"DATABASE_URL": self.url, "SECRET_KEY": SECRET_KEY, "PATHWAYS_ENV": "development",
                    "SMS_BACKEND": "console", "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
                    "PYTHONPATH": str(ROOT), **extra})
        return env

    def close(self) -> None:
        """Dispose of connections; delete the SQLite file; empty the PostgreSQL schema (drop another)."""
        if self.app is not None:
            from app.extensions import db

            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
        elif os.environ.get("BENCH_KEEP_DATA") != "1":
            self._reset_postgres(recreate=self.schema == "public")

    def _reset_postgres(self, recreate: bool = True) -> None:
        engine = create_engine(self.url)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE"))
            if recreate:
                conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        engine.dispose()

    def server_started(self, wait: float = 0) -> datetime | None:
        """PostgreSQL's start time (None on SQLite, or when it does not answer within ``wait`` s)."""
        import time

        import psycopg

        if self.kind != "postgresql":
            return None
        deadline = time.monotonic() + wait
        while True:
            try:
                with psycopg.connect(self.postgres_url, connect_timeout=3) as conn:
                    return conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
            except psycopg.Error:
                if time.monotonic() > deadline:
                    return None
                time.sleep(2)

    @contextmanager
    def context(self) -> Iterator[None]:
        """An app context with a request (formkit and the services expect one)."""
        from app.extensions import db

        with self.app.app_context(), self.app.test_request_context(method="POST"):
            try:
                yield
            finally:
                db.session.remove()

    def size_on_disk(self) -> str:
        """The database's size (file or pg_database_size), for the notes."""
        if self._tmp:
            total = sum(os.path.getsize(os.path.join(self._tmp, f)) for f in os.listdir(self._tmp))
        else:
            engine = create_engine(self.url)
            with engine.connect() as conn:
                total = conn.scalar(text("SELECT pg_database_size(current_database())"))
            engine.dispose()
        return f"{total / 1024 / 1024:,.0f} MB"

    # -- real referrals through the real services ----------------------------------------------

    def walk(self, stop_before: str | None = None, *, days_ago: float = 0, finish: bool = False) -> Walk:
        """A GBV referral started and moved step by step through the services as the caseworker,
        up to (not including) the step ``stop_before``; ``finish``: also every target accepts
        (as by SMS) and the worker's tick ends the pathway. ``days_ago`` runs it in the past."""
        from app.auth.models import User
        from app.core.db import clock_moved
        from app.extensions import db
        from app.formkit import build_form, get_definition
        from app.formkit.choices import field_choices
        from app.inbox.services import accept_target
        from app.referrals import services as referrals
        from app.referrals.models import FormSubmission
        from app.workflow import services as workflow

        with self.context(), clock_moved(timedelta(days=-days_ago)):
            user = db.session.scalar(select(User).where(User.email == CASEWORKER))
            referral = referrals.start_referral(user, "gbv_referral")
            db.session.commit()
            sizes = [("start", len(referral.instance.state))]
            while (current := referrals.current_step(user, referral)) is not None:
                task = current.task
                if task.spec_name == stop_before:
                    break
                definition = get_definition(task.form_key)
                answers = dict(GBV_ANSWERS.get(task.spec_name) or GBV_ANSWERS[task.form_key])
                for key, value in answers.items():
                    if value == "@2":
                        answers[key] = [v for v, _label in field_choices(definition.field(key))][:2]
                bound = build_form(definition, formdata=formdata(answers))
                if not bound.validate():
                    raise RuntimeError(f"{task.form_key}: {bound.form.errors}")
                referrals.submit_step(user, referral, task.task_uuid, referral.instance.revision,
                                      answers=bound.answers(), workflow_data=bound.workflow_data())
                db.session.commit()
                sizes.append((task.spec_name, len(referral.instance.state)))
            if finish:
                for target in referral.targets:
                    accept_target(None, target, channel="sms")
                    db.session.commit()
                sizes.append(("accepted by SMS", len(referral.instance.state)))
                while workflow.fire_due_timers() and not referral.instance.completed:
                    db.session.refresh(referral.instance)
                db.session.refresh(referral.instance)
                sizes.append(("tick", len(referral.instance.state)))
                if not referral.instance.completed:
                    raise RuntimeError("the pathway did not finish")
            answer_bytes = sum(len(json.dumps(s.answers, ensure_ascii=False).encode()) for s in db.session.scalars(
                select(FormSubmission).where(FormSubmission.referral_id == referral.id)))
            return Walk(referral.id, sizes, answer_bytes)

    def template(self, name: str) -> Walk:
        """A referral to copy: ``person`` / ``review`` (waiting at that step), ``sent`` (sent to
        two services, waiting for their answers, timers in the future) or ``sent_due`` (sent
        eight days ago, normal urgency: its half-time reminder is due)."""
        if name not in self._templates:
            if name in ("person", "review"):
                self._templates[name] = self.walk(stop_before=name)
            elif name == "sent":
                self._templates[name] = self.walk()
            elif name == "sent_due":
                self._templates[name] = self.walk(days_ago=8)
            else:
                raise KeyError(name)
        return self._templates[name]

    # -- bulk copies ----------------------------------------------------------------------------

    def clone(self, template: Walk, count: int, *, answers: bool = False, spread_services: bool = False,
              next_timer: Callable[[random.Random], datetime | None] | None = None,
              analyze: bool = True) -> list[tuple[int, int]]:
        """``count`` copies of the template referral's rows; returns [(referral id, instance id)].

        ``spread_services``: each copy's targets go to other services of the directory (in turn),
        so the providers' inboxes share them; ``next_timer``: the copies' ``next_timer_at``.
        """
        from app.core.db import utcnow
        from app.extensions import db

        with self.app.app_context():
            tables = db.metadata.tables
            t_ref, t_inst, t_task = tables["referrals"], tables["workflow_instances"], tables["workflow_tasks"]
            t_consent, t_target, t_sub = tables["consents"], tables["referral_targets"], tables["form_submissions"]
            with db.engine.connect() as conn:
                referral = dict(conn.execute(select(t_ref).where(t_ref.c.id == template.referral_id)).mappings().one())
                instance = dict(conn.execute(select(t_inst).where(t_inst.c.id == referral["instance_id"]))
                                .mappings().one())
                tasks = [dict(r) for r in conn.execute(select(t_task).where(
                    t_task.c.instance_id == instance["id"]).order_by(t_task.c.id)).mappings()]
                consents = [dict(r) for r in conn.execute(select(t_consent).where(
                    t_consent.c.referral_id == referral["id"])).mappings()]
                targets = [dict(r) for r in conn.execute(select(t_target).where(
                    t_target.c.referral_id == referral["id"]).order_by(t_target.c.id)).mappings()]
                submissions = [dict(r) for r in conn.execute(select(t_sub).where(
                    t_sub.c.referral_id == referral["id"]).order_by(t_sub.c.id)).mappings()] if answers else []
                services = conn.execute(text("SELECT id, organisation_id FROM services ORDER BY id")).all()
                codes = set(conn.scalars(select(t_target.c.code)))
                references = set(conn.scalars(select(t_ref.c.reference)))
                next_ids = {t.name: (conn.scalar(select(func.max(t.c.id))) or 0) + 1
                            for t in (t_ref, t_inst, t_task, t_consent, t_target, t_sub)}
        now, rng = utcnow(), self._rng
        ids = {name: iter(range(start, start + count * 20)) for name, start in next_ids.items()}
        serial = iter(range(10 ** 6, 10 ** 9))
        sources = {t_inst: [instance], t_ref: [referral], t_task: tasks, t_consent: consents, t_target: targets,
                   t_sub: submissions}
        # Each new row: the template row it copies ("_src") and the columns that differ from it.
        rows: dict[Table, list[dict]] = {t: [] for t in sources}
        made: list[tuple[int, int]] = []

        def unique(existing: set[str], make: Callable[[int], str]) -> str:
            while (value := make(next(serial))) in existing:
                pass
            existing.add(value)
            return value

        for n in range(count):
            instance_id, referral_id = next(ids["workflow_instances"]), next(ids["referrals"])
            created = now - timedelta(seconds=rng.uniform(0, 365 * 86400))
            rows[t_inst].append({"_src": instance["id"], "id": instance_id, "created_at": created,
                                 "updated_at": max(created, instance["updated_at"]),
                                 **({"next_timer_at": next_timer(rng)} if next_timer else {})})
            rows[t_ref].append({"_src": referral["id"], "id": referral_id, "instance_id": instance_id,
                                "reference": unique(references, lambda i: "R-" + _encode(i, _REFERENCE_ALPHABET, 6)),
                                "created_at": created, "updated_at": created + timedelta(minutes=30)})
            rows[t_task] += [{"_src": t["id"], "id": next(ids["workflow_tasks"]), "instance_id": instance_id}
                             for t in tasks]
            for table, template_rows in ((t_consent, consents), (t_sub, submissions)):
                rows[table] += [{"_src": r["id"], "id": next(ids[table.name]), "referral_id": referral_id}
                                for r in template_rows]
            for j, target in enumerate(targets):
                row = {"_src": target["id"], "id": next(ids["referral_targets"]), "referral_id": referral_id,
                       "code": unique(codes, lambda i: _encode(i, _CODE_ALPHABET, 6))}
                if spread_services:
                    row["service_id"], row["organisation_id"] = services[(n * len(targets) + j) % len(services)]
                rows[t_target].append(row)
            made.append((referral_id, instance_id))
        self._insert(rows, analyze)
        return made

    def _insert(self, rows: dict[Table, list[dict]], analyze: bool = True) -> None:
        """Bulk insert, parents first, in one transaction: ``INSERT ... SELECT`` of each row's
        template row joined to the changed values (PostgreSQL arrays, SQLite ``json_each``), so the
        database copies the big state itself (on PostgreSQL, as stored: already compressed)."""
        engine = create_engine(self.url)
        if engine.dialect.name == "sqlite":
            # Loading only: a rollback journal (new pages are written once, not to the WAL and then
            # again) and no fsync. It takes effect when nothing else has the file open (servers
            # stopped); the app's connections switch back to WAL (app/core/database.py).
            from app.extensions import db

            with self.app.app_context():
                db.engine.dispose()

            @event.listens_for(engine, "connect")
            def _loading(dbapi_connection, _record) -> None:
                with suppress(sqlite3.OperationalError):  # another process has it open: stays WAL
                    dbapi_connection.execute("PRAGMA journal_mode=DELETE")
                dbapi_connection.execute("PRAGMA synchronous=OFF")

        try:
            with engine.begin() as conn:
                postgres = engine.dialect.name == "postgresql"
                if postgres:
                    # Copies of consistent rows: skip the per-row foreign key triggers (as pg_restore does).
                    conn.execute(text("SET LOCAL session_replication_role = replica"))
                for table, table_rows in rows.items():
                    if table_rows:
                        (_insert_select_pg if postgres else _insert_select_sqlite)(conn, table, table_rows)
                for table in rows:
                    if postgres:
                        conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                          f"(SELECT max(id) FROM {table.name}))"))
                    if analyze:
                        conn.execute(text(f"ANALYZE {table.name}"))
            if not postgres:
                with engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        finally:
            engine.dispose()

    # -- the 100,000 waiting referrals ----------------------------------------------------------

    def ensure_waiting(self, total: int, due: int = 100, chunk: int = 20_000) -> None:
        """Referrals sent and waiting for answers, ``total`` of them, their next timer between two
        hours and two weeks away; plus (once) ``due`` whose half-time reminder is due now."""
        from app.core.db import utcnow

        sent = self.template("sent")
        if self.due is None and due:
            template = self.template("sent_due")
            made = self.clone(template, due)
            from app.extensions import db
            from app.referrals.models import Referral
            from app.workflow.models import WorkflowInstance

            with self.app.app_context():
                state, timer_at = db.session.execute(
                    select(WorkflowInstance.state, WorkflowInstance.next_timer_at).join(
                        Referral, Referral.instance_id == WorkflowInstance.id)
                    .where(Referral.id == template.referral_id)).one()
                db.session.remove()
            self.due = Due([i for _r, i in made], [r for r, _i in made], state, timer_at)
        while self.waiting < total:
            n = min(chunk, total - self.waiting)
            soon = utcnow() + timedelta(hours=2)
            self.clone(sent, n, spread_services=True, analyze=self.waiting + n >= total,
                       next_timer=lambda rng, soon=soon: soon + timedelta(seconds=rng.uniform(0, 13 * 86400)))
            self.waiting += n
            say(f"{self.label}: {self.waiting:,} waiting referrals")

    def make_due_again(self) -> None:
        """Put the due referrals back as they were before a tick (state, timer, no reminder sent)."""
        from app.extensions import db
        from app.referrals.models import ReferralTarget
        from app.sms.models import OutboxMessage
        from app.workflow.models import WorkflowInstance

        due = self.due
        with self.app.app_context():
            db.session.execute(update(WorkflowInstance).where(WorkflowInstance.id.in_(due.instance_ids))
                               .values(state=due.state, next_timer_at=due.next_timer_at, pending_message=None))
            targets = select(ReferralTarget.id).where(ReferralTarget.referral_id.in_(due.referral_ids))
            db.session.execute(update(ReferralTarget).where(ReferralTarget.id.in_(targets)).values(reminded_at=None))
            db.session.execute(delete(OutboxMessage).where(OutboxMessage.kind == "reminder",
                                                           OutboxMessage.target_id.in_(targets)))
            db.session.commit()
            db.session.remove()


def _insert_select_pg(conn: Connection, table: Table, rows: list[dict]) -> None:
    """``INSERT INTO table SELECT`` each row's template row (``_src``) with the changed columns
    taken from arrays (integers, text and timestamps)."""
    changed = [k for k in rows[0] if k != "_src"]
    array_type = {int: "int[]", str: "text[]"}

    def cast(name: str) -> str:
        value = next((r[name] for r in rows if r[name] is not None), None)
        return array_type.get(type(value), "timestamptz[]")

    names = [c.name for c in table.columns]
    picked = ", ".join(f"u.{n}" if n in changed else f"t.{n}" for n in names)
    arrays = ", ".join(f"CAST(:{n} AS {cast(n)})" for n in ["_src", *changed])
    conn.execute(text(f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {picked} FROM {table.name} t "
                      f"JOIN unnest({arrays}) AS u(_src, {', '.join(changed)}) ON t.id = u._src"),
                 {n: [r[n] for r in rows] for n in ["_src", *changed]})


def _insert_select_sqlite(conn: Connection, table: Table, rows: list[dict], batch: int = 20_000) -> None:
    """The same for SQLite: the changed values, as the column types store them, in a JSON array
    of arrays read with ``json_each``."""
    changed = [k for k in rows[0] if k != "_src"]
    processors = [table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect) for name in changed]
    names = [c.name for c in table.columns]
    picked = ", ".join(f"json_extract(u.value, '$[{changed.index(n) + 1}]')" if n in changed else f"t.{n}"
                       for n in names)
    statement = text(f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {picked} FROM json_each(:rows) u "
                     f"JOIN {table.name} t ON t.id = json_extract(u.value, '$[0]')")
    for start in range(0, len(rows), batch):
        values = [[r["_src"], *(p(r[n]) if p else r[n] for n, p in zip(changed, processors, strict=True))]
                  for r in rows[start:start + batch]]
        conn.execute(statement, {"rows": json.dumps(values)})
