"""performance: a live-rows index on (<column>, id) for each column a list orders by (issue #9)

Every read filters `deleted_on IS NULL` and every list order ends with the id (a total order):
with a partial index on (<column>, id) WHERE deleted_on IS NULL (PostgreSQL, SQLite; MariaDB,
which has no partial indexes, indexes all rows), a first page, page 500, or a page sorted either
way is one index range read backwards or forwards, not a sort of the live rows. 0006's
(deleted_on, <default order>) indexes are replaced: PostgreSQL does not take `IS NULL` as fixing
their first column, so it sorted; SQLite, whose statistics count every NULL as a distinct value,
chose them even for other orders and sorted two million rows (2.9 s for service records by hours).

Revision ID: 0007_live_order
Revises: 0006_performance
Create Date: 2026-12-05 19:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007_live_order'
down_revision = '0006_performance'
branch_labels = None
depends_on = None

# table -> the columns its list orders by (the default first), each indexed as
# ix_<table>_live_<column> on (<column>, id) of the live rows — app.models.base.live_order.
LIVE_ORDER = {
    "organization": ["path", "name", "code", "type"],
    "unit": ["name", "credit_code", "party_member_count", "status"],
    "member": ["name", "category", "status"],
    "dictionary": ["order", "kind", "code", "label"],
    "resource": ["changed_on", "title", "year", "status"],
    "need": ["created_on", "title", "urgency", "status", "deadline"],
    "service_item": ["changed_on", "title", "year", "status"],
    "micro_wish": ["created_on", "status", "claimed_on", "fulfilled_on"],
    "joint_body": ["name", "level", "changed_on"],
    "body_member": ["role"],
    "meeting": ["planned_date", "type", "status", "held_on"],
    "attendance": ["attendee_level", "status"],
    "agenda_item": ["seq", "title"],
    "resolution": ["deadline", "status", "closed_on"],
    "supervision_note": ["note_date", "progress"],
    "agreement": ["valid_to", "title", "valid_from", "status"],
    "unit_registration": ["registered_on", "receipt_no", "status"],
    "member_registration": ["registered_on", "certificate_no", "status"],
    "service_post": ["name", "headcount", "claimed"],
    "post_claim": ["claimed_on", "status"],
    "service_record": ["served_on", "hours", "status"],
    "point_rule": ["code", "name"],
    "point_entry": ["created_on", "delta", "period"],
    "star_rating": ["score", "period", "stars", "status"],
}

LIVE = "deleted_on IS NULL"

# 0006's indexes on (deleted_on, <default order>), which these replace.
REPLACED = {
    "unit": "name",
    "member": "name",
    "resource": "changed_on",
    "need": "created_on",
    "service_item": "changed_on",
    "micro_wish": "created_on",
    "joint_body": "changed_on",
    "meeting": "planned_date",
    "service_record": "served_on",
    "point_entry": "created_on",
}


def upgrade():
    for table, column in REPLACED.items():
        op.drop_index(f"ix_{table}_live_{column}", table_name=table)
    for table, columns in LIVE_ORDER.items():
        for column in columns:
            op.create_index(f"ix_{table}_live_{column}", table, [column, "id"],
                            postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))


def downgrade():
    for table, columns in reversed(LIVE_ORDER.items()):
        for column in reversed(columns):
            op.drop_index(f"ix_{table}_live_{column}", table_name=table)
    for table, column in REPLACED.items():
        op.create_index(f"ix_{table}_live_{column}", table, ["deleted_on", column])
