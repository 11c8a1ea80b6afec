"""rollups of three more of the dashboard's figures (issue 29, app/rollups.py): each unit's 三个一
per year (UnitOnes — 协议“三个一” counted a year of meetings, attendances and needs, 0.8 s on
the city's SQLite), the live members per community and 所在网格 (MemberGroups — 各网格党员
counted 600,000 members), the needs raised and closed per community and month
(NeedCommunities — 各社区需求办理 counted a year's 280,000 needs); and the agreements' index per
community (0034) also holds each agreement's unit and yearly target (协议“三个一” fetched
30,000 agreement rows for them)

Revision ID: 0038_figure_rollups
Revises: 0037_monthly_service
Create Date: 2026-12-07 14:10:00

"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0038_figure_rollups'
down_revision = '0037_monthly_service'
branch_labels = None
depends_on = None


LIVE = "deleted_on IS NULL"
ROLLUPS = ('unit_ones', 'member_group', 'need_community')
COMMUNITY = ["community_id", "status", "signed_on", "valid_from", "valid_to", "deleted_on"]


def upgrade():
    op.drop_index("ix_agreement_live_community", table_name="agreement")
    op.create_index("ix_agreement_live_community", "agreement",
                    [*COMMUNITY, "unit_id", "yearly_target"], unique=False,
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
    op.create_table(
        'rollup_unit_ones',
        sa.Column('unit_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('quarters_held', sa.Integer(), nullable=False),
        sa.Column('quarters_attended', sa.Integer(), nullable=False),
        sa.Column('needs_closed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('unit_id', 'year', name=op.f('pk_rollup_unit_ones')))
    op.create_table(
        'rollup_member_group',
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('group_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('members', sa.Integer(), nullable=False),
        sa.Column('red', sa.Integer(), nullable=False),
        sa.Column('household', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'group_id', name=op.f('pk_rollup_member_group')))
    op.create_table(
        'rollup_need_community',
        sa.Column('community_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('year', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('month', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('raised', sa.Integer(), nullable=False),
        sa.Column('closed', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('community_id', 'year', 'month',
                                name=op.f('pk_rollup_need_community')))
    # Their every cell to compute (app/rollups.py EVERY_CELL): the job or `rollups rebuild`.
    marks = sa.table('rollup_mark', sa.column('rollup', sa.String), sa.column('subject', sa.Integer),
                     sa.column('period', sa.String), sa.column('created_on', sa.DateTime))
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    op.bulk_insert(marks, [{'rollup': rollup, 'subject': -1, 'period': '', 'created_on': now}
                           for rollup in ROLLUPS])


def downgrade():
    op.execute("DELETE FROM rollup_mark WHERE rollup IN "
               + "(" + ", ".join(f"'{rollup}'" for rollup in ROLLUPS) + ")")
    op.drop_table('rollup_need_community')
    op.drop_table('rollup_member_group')
    op.drop_table('rollup_unit_ones')
    op.drop_index("ix_agreement_live_community", table_name="agreement")
    op.create_index("ix_agreement_live_community", "agreement", COMMUNITY, unique=False,
                    postgresql_where=sa.text(LIVE), sqlite_where=sa.text(LIVE))
