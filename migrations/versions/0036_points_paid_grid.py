"""rollups: 积分发放 of the whole ledger by month (issue 29, app/rollups.py PointsPaid) — 组织部's
board summed two million entries for it; and the live members' grid counts indexed (各网格党员
read 600,000 member rows one by one on SQLite to count them per grid)

Revision ID: 0036_points_paid_grid
Revises: 0035_need_due
Create Date: 2026-12-07 11:20:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0036_points_paid_grid'
down_revision = '0035_need_due'
branch_labels = None
depends_on = None


LIVE = "deleted_on IS NULL"


def upgrade():
    op.create_index("ix_member_live_grid", "member",
                    ["group_id", "is_red_grid_worker", "is_household_center"], unique=False,
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    op.create_table(
        'rollup_points_paid',
        sa.Column('subject_type', sa.String(length=8), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        sa.Column('points', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.PrimaryKeyConstraint('subject_type', 'kind', 'year', 'month',
                                name=op.f('pk_rollup_points_paid')))
    # Its every cell to compute (app/rollups.py EVERY_CELL): the job or `rollups rebuild`.
    marks = sa.table('rollup_mark', sa.column('rollup', sa.String), sa.column('subject', sa.Integer),
                     sa.column('period', sa.String), sa.column('created_on', sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(marks, [{'rollup': 'points_paid', 'subject': -1, 'period': '',
                            'created_on': now}])


def downgrade():
    op.execute("DELETE FROM rollup_mark WHERE rollup = 'points_paid'")
    op.drop_table('rollup_points_paid')
    op.drop_index("ix_member_live_grid", table_name="member")
