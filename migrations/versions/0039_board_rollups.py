"""rollups of the board's last raw figures (issue 29, app/rollups.py): the joint meetings'
attendance per host, type and month held (MeetingAttendance — 参会率 and 参会职级 joined a
year's attendance to its meetings and bodies, 0.12 s each on the city's SQLite), the
resolutions per host and month of their deadline (Resolutions — 议定事项办理, 0.3-0.4 s), each
with node cells; the micro-wishes per community and month of each step (Wishes — 微心愿月度情况
and 认领率 read a year's wishes by three dates, 0.2 s), with node cells; and the needs' cells
count those matched (需求匹配率 tested a year's needs against every link, 0.2-0.35 s)

Revision ID: 0039_board_rollups
Revises: 0038_figure_rollups
Create Date: 2026-12-07 17:10:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0039_board_rollups'
down_revision = '0038_figure_rollups'
branch_labels = None
depends_on = None


# 'need' recomputed whole: its cells' new column.
ROLLUPS = ('attendance', 'resolution', 'wish', 'need')
COUNTS = {'rollup_attendance': ('records', 'present', 'below'),
          'rollup_resolution': ('total', 'closed', 'on_time'),
          'rollup_wish': ('posted', 'claimed', 'fulfilled', 'published', 'published_claimed')}
PLACE = {'rollup_attendance': 'host_id', 'rollup_resolution': 'host_id',
         'rollup_wish': 'community_id'}


def _keys(table):
    keys = [sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
            sa.Column('month', sa.Integer(), autoincrement=False, nullable=False)]
    if table == 'rollup_attendance':
        keys.insert(0, sa.Column('type', sa.String(length=8), nullable=False))
    return keys


def upgrade():
    for table, counts in COUNTS.items():
        node = table.replace('rollup_', 'rollup_node_')
        for name, place in ((table, PLACE[table]), (node, 'node_id')):
            keys = [sa.Column(place, sa.Integer(), autoincrement=False, nullable=False),
                    *_keys(table)]
            op.create_table(name, *keys,
                            *[sa.Column(count, sa.Integer(), nullable=False) for count in counts],
                            sa.PrimaryKeyConstraint(*[k.name for k in keys],
                                                    name=op.f(f'pk_{name}')))
        op.create_index(f'ix_{table}_month', table, ['year', 'month', PLACE[table]],
                        unique=False)
    for table in ('rollup_need', 'rollup_node_need'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('matched', sa.Integer(), nullable=False,
                                       server_default='0'))
    # Their every cell to compute (app/rollups.py EVERY_CELL): the job or `rollups rebuild`;
    # the needs' figures read the raw rows until then.
    marks = sa.table('rollup_mark', sa.column('rollup', sa.String), sa.column('subject', sa.Integer),
                     sa.column('period', sa.String), sa.column('created_on', sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(marks, [{'rollup': rollup, 'subject': -1, 'period': '', 'created_on': now}
                           for rollup in ROLLUPS])


def downgrade():
    op.execute("DELETE FROM rollup_mark WHERE rollup IN ('attendance', 'resolution', 'wish')")
    for table in ('rollup_node_need', 'rollup_need'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('matched')
    for table in COUNTS:
        op.drop_index(f'ix_{table}_month', table_name=table)
        op.drop_table(table.replace('rollup_', 'rollup_node_'))
        op.drop_table(table)
