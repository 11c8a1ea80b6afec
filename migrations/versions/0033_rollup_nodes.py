"""rollups: node cells — each community-keyed rollup's sums at every node above a community
(district, street) and for all data (node 0), so a figure at a node reads a few rows; the
registration counts indexed by either place (a community's figures and node cells read them)
(issue 29, app/rollups.py)

Revision ID: 0033_rollup_nodes
Revises: 0031_assessment_indexes
Create Date: 2026-12-07 11:00:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0033_rollup_nodes'
down_revision = '0031_assessment_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'rollup_node_service_hours',
        sa.Column('node_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('hours', sa.Numeric(precision=14, scale=1), nullable=False),
        sa.Column('records', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('node_id', 'year', 'month',
                                name=op.f('pk_rollup_node_service_hours')))
    op.create_table(
        'rollup_node_registration',
        sa.Column('node_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('node_id', 'kind', 'community_id', 'year', 'month',
                                name=op.f('pk_rollup_node_registration')))
    op.create_index('ix_rollup_node_registration_community', 'rollup_node_registration',
                    ['community_id'], unique=False)
    op.create_table(
        'rollup_node_need',
        sa.Column('node_id', sa.Integer(), autoincrement=False, nullable=False),
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
        sa.PrimaryKeyConstraint('node_id', 'kind', 'year', 'month', 'category_id', 'status',
                                name=op.f('pk_rollup_node_need')))
    op.create_index('ix_rollup_registration_community', 'rollup_registration', ['community_id'],
                    unique=False)
    op.create_index('ix_rollup_registration_home', 'rollup_registration', ['home_id'],
                    unique=False)
    # Every node's cells to compute (app/rollups.py NODES, EVERY_CELL): the job or `flask
    # gongjian rollups rebuild` fills them; the figures read the raw rows until.
    marks = sa.table('rollup_mark', sa.column('rollup', sa.String), sa.column('subject', sa.Integer),
                     sa.column('period', sa.String), sa.column('created_on', sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(marks, [{'rollup': 'nodes', 'subject': -1, 'period': '', 'created_on': now}])


def downgrade():
    op.execute("DELETE FROM rollup_mark WHERE rollup = 'nodes'")
    op.drop_table('rollup_node_need')
    op.drop_index('ix_rollup_node_registration_community', table_name='rollup_node_registration')
    op.drop_table('rollup_node_registration')
    op.drop_table('rollup_node_service_hours')
    op.drop_index('ix_rollup_registration_home', table_name='rollup_registration')
    op.drop_index('ix_rollup_registration_community', table_name='rollup_registration')
