"""the board's overdue counts (issue 29): the needs still open at a step per community and month
(`rollup_need_community.open`), and the open needs by their stored due instant with every column
the overdue test and the figures read (ix_need_live_due) — 各社区需求办理, 逾期按环节 and 逾期按类别
count the needs late now as those open (the rollups' cells) less those not yet late, read live on
this index: a city's year holds 66,300 open needs, of which 61,514 late, each tested by its step's
dates where the 4,786 not late are one range of this index

Revision ID: 0040_need_open
Revises: 0039_board_rollups
Create Date: 2026-12-07 20:30:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0040_need_open'
down_revision = '0039_board_rollups'
branch_labels = None
depends_on = None

LIVE = "deleted_on IS NULL"


def upgrade():
    with op.batch_alter_table('rollup_need_community') as batch:
        batch.add_column(sa.Column('open', sa.Integer(), nullable=False, server_default='0'))
    op.create_index('ix_need_live_due', 'need',
                    ['due_rank', 'step_due_on', 'status', 'created_on', 'urgency', 'deadline',
                     'community_id', 'category_id', 'deleted_on'],
                    unique=False, postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    # Every cell to compute again (app/rollups.py EVERY_CELL): the job or `rollups rebuild`;
    # the figures read the raw rows until then.
    marks = sa.table('rollup_mark', sa.column('rollup', sa.String), sa.column('subject', sa.Integer),
                     sa.column('period', sa.String), sa.column('created_on', sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(marks, [{'rollup': 'need_community', 'subject': -1, 'period': '',
                            'created_on': now}])


def downgrade():
    op.drop_index('ix_need_live_due', table_name='need')
    with op.batch_alter_table('rollup_need_community') as batch:
        batch.drop_column('open')
