"""An anchor read off a related row by its key (a service record's member's community) is asked
as `member_id IN (SELECT id FROM member WHERE community_id IN …)` rather than as a correlated
subquery per row (app/security/scope.py `_anchor_in`, issue 30): the rows it grants are the
ones the correlated form granted, for every such anchor and every scoped demo user, also in a
statement that joins the related table itself."""

import pytest
from sqlalchemy import event, false, or_, select

from app.security import scope

pytestmark = pytest.mark.db

USERS = ["jiedao01", "shequ01", "wangge01", "danwei01", "danwei02", "dangyuan01"]


def principal_of(session, username):
    from app.security.models import UserAccount
    from app.security.principal import principal_for

    return principal_for(session.scalar(select(UserAccount)
                                        .where(UserAccount.username == username)))


def correlated_owner_clause(model, principal):
    """`owner_clause` as it was before the rewrite: each anchor compared as it is."""
    declared, parts = model.__scope__, []
    if principal.org_paths:
        subtree = scope.subtree_ids(principal.org_paths)
        parts += [scope._anchor(model, a).in_(subtree) for a in declared.org]
    if principal.unit_ids:
        parts += [scope._anchor(model, a).in_(principal.unit_ids) for a in declared.unit]
    if principal.member_ids:
        parts += [scope._anchor(model, a).in_(principal.member_ids) for a in declared.member]
    return or_(*parts) if parts else false()


def rewritten_models():
    return [m for m in scope.scoped_models() if not m.__scope__.is_global and any(
        scope._semijoin_shape(m, anchor()) is not None
        for anchor in (*m.__scope__.org, *m.__scope__.unit, *m.__scope__.member))]


def test_rewritten_anchors_grant_the_rows_the_correlated_ones_did(app):
    from app.extensions import db
    from app.models.cobuild import ServiceRecord

    models = rewritten_models()
    assert ServiceRecord in models and len(models) >= 10
    with app.test_request_context(), scope.unscoped():
        principals = {u: principal_of(db.session, u) for u in USERS}
        granted = 0
        for model in models:
            related = {scope._semijoin_shape(model, a())[1].table
                       for a in (*model.__scope__.org, *model.__scope__.unit)
                       if scope._semijoin_shape(model, a()) is not None}
            for username, principal in principals.items():
                new = scope.owner_clause(model, principal)
                old = correlated_owner_clause(model, principal)
                assert set(db.session.scalars(select(model.id).where(new))) \
                    == set(db.session.scalars(select(model.id).where(old))), (model, username)
                # The outer query joining the related table must not correlate it away.
                for table in related:
                    joined = select(model.id).join(table).distinct()
                    assert set(db.session.scalars(joined.where(new))) \
                        == set(db.session.scalars(joined.where(old))), (model, username, table)
                granted += db.session.scalar(select(model.id).where(new).limit(1)) is not None
        assert granted, "no demo user owns a row of a rewritten model: the test proves nothing"


def test_a_community_reads_its_service_records_without_a_subquery_per_row(app, as_user):
    """The list's count and page as shequ01 run the member subquery once (uncorrelated):
    correlated, each counted 25,000 records' members twice on SQLite (~80 ms a query)."""
    from app.extensions import db

    browser = as_user("shequ01")
    with app.app_context():
        engine = db.engine
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        page = browser.get("/service_record/list/")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert page.status_code == 200
    listed = [s for s in seen if "FROM service_record" in s]
    assert listed
    for statement in listed:
        flat = " ".join(statement.split())
        assert "member.id = service_record.member_id" not in flat, flat
        assert "service_record.member_id IN (SELECT member.id" in flat, flat
