"""The list pages read an index in order: their cost does not grow with the organisation's
referrals (bench/list_pages.py measures it with 100,000)."""

from __future__ import annotations

from sqlalchemy import text

from app.extensions import db
from app.inbox.services import inbox_query
from app.referrals.services import referral_list_query


def _plan(query) -> str:
    sql = str(query.limit(20).compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "sqlite":
        return " ".join(str(row) for row in db.session.execute(text("EXPLAIN QUERY PLAN " + sql)))
    db.session.execute(text("SET LOCAL enable_seqscan = off"))
    return " ".join(str(row) for row in db.session.execute(text("EXPLAIN " + sql)))


def test_the_caseworker_list_is_read_in_index_order(app_ctx):
    plan = _plan(referral_list_query(1))
    assert "ix_referrals_org_updated_id" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_the_inbox_uses_its_index(app_ctx):
    plan = _plan(inbox_query(1))
    assert "ix_referral_targets_org_respond_by_id" in plan or "ix_referral_targets_org_status" in plan, plan
