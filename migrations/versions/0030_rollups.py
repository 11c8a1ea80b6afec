"""rollups: the dashboard's sums and counts, and the change log that keeps them current
(issue 29, app/rollups.py)

Revision ID: 0030_rollups
Revises: 0029_finding_rectification
Create Date: 2026-12-07 08:00:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0030_rollups'
down_revision = '0029_finding_rectification'
branch_labels = None
depends_on = None

# The rollups of this revision, each filled by a mark for all its cells (subject -1): the
# job or `flask gongjian rollups rebuild` computes them; their figures read the raw rows until.
ROLLUPS = ('service_hours', 'points_member', 'points_unit', 'registration', 'need')


def upgrade():
    marks = op.create_table(
        'rollup_mark',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('rollup', sa.String(length=16), nullable=False),
        sa.Column('subject', sa.Integer(), nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('created_on', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_mark')))
    lock = op.create_table(
        'rollup_lock',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('applied_on', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_rollup_lock')))
    op.create_table(
        'rollup_service_hours',
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('hours', sa.Numeric(precision=14, scale=1), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'unit_id', 'year', 'month',
                                name=op.f('pk_rollup_service_hours')))
    op.create_index('ix_rollup_service_hours_month', 'rollup_service_hours',
                    ['year', 'month', 'community_id'], unique=False)
    op.create_table(
        'rollup_point_balance',
        sa.Column('subject_type', sa.String(length=8), nullable=False),
        sa.Column('subject_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('period', sa.String(length=8), nullable=False),
        sa.Column('points', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('entries', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('subject_type', 'subject_id', 'period',
                                name=op.f('pk_rollup_point_balance')))
    op.create_index('ix_rollup_point_balance_rank', 'rollup_point_balance',
                    ['subject_type', 'period', 'points', 'subject_id'], unique=False)
    op.create_table(
        'rollup_registration',
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('home_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('kind', 'community_id', 'home_id', 'unit_id', 'year', 'month',
                                name=op.f('pk_rollup_registration')))
    op.create_table(
        'rollup_need',
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('category_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('status', sa.String(length=8), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('timed', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Numeric(precision=20, scale=3), nullable=False),
        sa.Column('on_time', sa.Integer(), nullable=False),
        sa.Column('rated', sa.Integer(), nullable=False),
        sa.Column('scored', sa.Integer(), nullable=False),
        sa.Column('satisfaction', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'kind', 'year', 'month', 'category_id', 'status',
                                name=op.f('pk_rollup_need')))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(lock, [{'id': 1, 'applied_on': None}])  # what an apply holds (app/rollups.py)
    op.bulk_insert(marks, [{'rollup': name, 'subject': -1, 'period': '', 'created_on': now}
                           for name in ROLLUPS])


def downgrade():
    op.drop_table('rollup_need')
    op.drop_table('rollup_registration')
    op.drop_index('ix_rollup_point_balance_rank', table_name='rollup_point_balance')
    op.drop_table('rollup_point_balance')
    op.drop_index('ix_rollup_service_hours_month', table_name='rollup_service_hours')
    op.drop_table('rollup_service_hours')
    op.drop_table('rollup_lock')
    op.drop_table('rollup_mark')
