"""performance: indexes for every filter and order the lists offer (issue #9)

Each list's search and order columns get an index, and its default order one led by
deleted_on, so that a filtered, sorted or deep page reads an index range instead of sorting the
table. The scope predicates (organisation anchors, unit, member, status, deleted_on) were
indexed with their tables.
Long text columns (content: TEXT) are left out: they are searched with "contains", which no
B-tree index serves, and MariaDB cannot index TEXT without a prefix length.

Revision ID: 0006_performance
Revises: 0005_accounts
Create Date: 2026-11-22 03:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006_performance'
down_revision = '0005_accounts'
branch_labels = None
depends_on = None

# table -> columns, each indexed alone as ix_<table>_<column> (the models' naming convention).
INDEXED = {
    "organization": ["active", "secretary"],
    "unit": ["credit_code", "party_member_count", "party_org_type"],
    "member": ["gender"],
    "dictionary": ["active", "code", "label", "order"],
    "resource": ["title"],
    "need": ["source", "title"],
    "service_item": ["title"],
    "micro_wish": ["claimed_on"],
    "body_member": ["role"],
    "agenda_item": ["seq", "title"],
    "supervision_note": ["author", "progress"],
    "agreement": ["title", "valid_from"],
    "unit_registration": ["registered_on"],
    "member_registration": ["registered_on"],
    "service_post": ["active", "claimed", "headcount", "name"],
    "post_claim": ["claimed_on"],
    "service_record": ["hours"],
    "point_rule": ["active", "event", "name", "subject"],
    "point_entry": ["delta", "kind", "subject_type"],
    "star_rating": ["score", "stars"],
    "audit_log": ["ip", "record_id", "username"],
}


# table -> the list's default order column, indexed among live rows as ix_<table>_live_<column>
# on (deleted_on, <column>): every read filters `deleted_on IS NULL`, so that page 500 in the
# default order walks this index alone instead of reading 10,000 rows to skip them.
LIVE_ORDER = {
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
    for table, columns in INDEXED.items():
        for column in columns:
            op.create_index(f"ix_{table}_{column}", table, [column])
    for table, column in LIVE_ORDER.items():
        op.create_index(f"ix_{table}_live_{column}", table, ["deleted_on", column])


def downgrade():
    for table, column in reversed(LIVE_ORDER.items()):
        op.drop_index(f"ix_{table}_live_{column}", table_name=table)
    for table, columns in reversed(INDEXED.items()):
        for column in reversed(columns):
            op.drop_index(f"ix_{table}_{column}", table_name=table)
