"""performance: covering indexes of the live rows for the dashboard's figures that are not
rolled up (issue 29): the open needs by step (overdue now), the needs raised per community and
closed per unit, the micro-wishes by the date of each step, the lists of a year by category and
status, the meetings planned and held, their attendance, the resolutions by deadline and the
joint bodies' member units

At city scale each of these figures walked an index of one column and fetched every row it
named from the table (300,000 needs for the overdue counts, 1.2–1.7 s each on SQLite); with
every column the query reads in the index, the rows are not fetched. Partial on the live rows
as 0031's (PostgreSQL, SQLite; MariaDB, which has no partial indexes, indexes all rows).

Revision ID: 0034_figure_indexes
Revises: 0033_rollup_nodes
Create Date: 2026-12-07 11:00:00

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0034_figure_indexes'
down_revision = '0033_rollup_nodes'
branch_labels = None
depends_on = None

LIVE = "deleted_on IS NULL"

# (table, name, columns): ix_<table>_live_<name> — app.models.base.live_index.
INDEXES = [
    ("need", "community", ["community_id", "created_on", "status", "deleted_on"]),
    ("need", "raised", ["created_on", "status", "community_id", "deleted_on"]),
    ("need", "open", ["status", "created_on", "urgency", "deadline", "community_id", "category_id", "deleted_on"]),
    ("need", "closed", ["completed_on", "status", "assigned_unit_id", "deleted_on"]),
    ("micro_wish", "posted", ["created_on", "status", "community_id", "deleted_on"]),
    ("micro_wish", "claimed", ["claimed_on", "community_id", "deleted_on"]),
    ("micro_wish", "fulfilled", ["fulfilled_on", "community_id", "deleted_on"]),
    ("resource", "kind", ["year", "category_id", "status", "unit_id", "deleted_on"]),
    ("service_item", "kind", ["year", "category_id", "status", "provider_unit_id", "deleted_on"]),
    ("agreement", "community", ["community_id", "status", "signed_on", "valid_from", "valid_to",
                                "deleted_on"]),
    ("body_member", "body", ["body_id", "unit_id", "deleted_on"]),
    ("meeting", "planned", ["planned_date", "type", "status", "body_id", "deleted_on"]),
    ("meeting", "held", ["status", "type", "held_on", "body_id", "deleted_on"]),
    ("attendance", "meeting", ["meeting_id", "status", "unit_id", "attendee_level", "deleted_on"]),
    ("resolution", "due", ["deadline", "status", "closed_on", "meeting_id", "deleted_on"]),
]


def upgrade():
    for table, name, columns in INDEXES:
        op.create_index(f"ix_{table}_live_{name}", table, columns, unique=False,
                        postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))


def downgrade():
    for table, name, _columns in reversed(INDEXES):
        op.drop_index(f"ix_{table}_live_{name}", table_name=table)
