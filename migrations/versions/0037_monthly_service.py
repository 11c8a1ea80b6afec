"""rollups: 双报到's monthly service (issue 29, app/rollups.py MonthlyService) — 组织部's board
probed every registration's service records for it (4.85 s of the city's 7 s on SQLite)

Revision ID: 0037_monthly_service
Revises: 0036_points_paid_grid
Create Date: 2026-12-07 14:00:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0037_monthly_service'
down_revision = '0036_points_paid_grid'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'rollup_monthly_service',
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('home_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('grouped', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('members', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'home_id', 'grouped', 'unit_id', 'year', 'month',
                                name=op.f('pk_rollup_monthly_service')))
    op.create_index('ix_rollup_monthly_service_month', 'rollup_monthly_service',
                    ['year', 'month', 'community_id', 'unit_id', 'home_id', 'grouped', 'members'],
                    unique=False)
    op.create_index('ix_rollup_monthly_service_home', 'rollup_monthly_service', ['home_id'],
                    unique=False)
    # Its every cell to compute (app/rollups.py EVERY_CELL): the job or `rollups rebuild`.
    marks = sa.table('rollup_mark', sa.column('rollup', sa.String), sa.column('subject', sa.Integer),
                     sa.column('period', sa.String), sa.column('created_on', sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(marks, [{'rollup': 'monthly_service', 'subject': -1, 'period': '',
                            'created_on': now}])


def downgrade():
    op.execute("DELETE FROM rollup_mark WHERE rollup = 'monthly_service'")
    op.drop_index('ix_rollup_monthly_service_home', table_name='rollup_monthly_service')
    op.drop_index('ix_rollup_monthly_service_month', table_name='rollup_monthly_service')
    op.drop_table('rollup_monthly_service')
