"""performance: covering indexes of the live rows for the figures that group a whole city's
members, registrations and service records (issue 26: 年度考核 of every community and unit)

On SQLite each of these GROUP BYs walked an index of one column and fetched every row it named
from the table (600,000 members for the in-service count per community, 18 s under load; each
registration's service records for the monthly service). With every column the query reads in
the index, the rows are not fetched: member per community and per work unit, registrations per
community and per member, a member's service records by day. Partial on the live rows as
0007's (PostgreSQL, SQLite; MariaDB, which has no partial indexes, indexes all rows).

Revision ID: 0031_assessment_indexes
Revises: 0030_rollups
Create Date: 2026-12-07 08:30:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0031_assessment_indexes'
down_revision = '0030_rollups'
branch_labels = None
depends_on = None

LIVE = "deleted_on IS NULL"

# (table, name, columns): ix_<table>_live_<name> — app.models.base.live_index.
INDEXES = [
    ("member", "community", ["community_id", "category", "status"]),
    ("member", "work_unit", ["work_unit_id", "category", "status", "community_id"]),
    ("member_registration", "community", ["community_id", "status", "registered_on", "member_id"]),
    ("member_registration", "member", ["member_id", "community_id", "status", "registered_on"]),
    ("service_record", "member_served", ["member_id", "served_on", "status"]),
]


def upgrade():
    for table, name, columns in INDEXES:
        op.create_index(f"ix_{table}_live_{name}", table, columns, unique=False,
                        postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(f"ix_{table}_live_{name}", table_name=table)
