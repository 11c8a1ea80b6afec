"""reports: 月汇报, the monthly work report of a node — its narrative, its review and its
figures frozen at submission (issue 25)

Revision ID: 0025_work_report
Revises: 0024_import_value_maps
Create Date: 2026-12-06 22:16:01.345227

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '0025_work_report'
down_revision = '0024_import_value_maps'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('work_report',
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('problems', sa.Text(), nullable=True),
    sa.Column('plans', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('return_reason', sa.String(length=500), nullable=True),
    sa.Column('figures', sa.Text().with_variant(mysql.MEDIUMTEXT(), 'mariadb').with_variant(mysql.MEDIUMTEXT(), 'mysql'), nullable=True),
    sa.Column('submitted_on', sa.DateTime(), nullable=True),
    sa.Column('submitted_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_on', sa.DateTime(), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('active_key', sa.String(length=24), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_work_report_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_work_report_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_work_report_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['org_id'], ['organization.id'], name=op.f('fk_work_report_org_id_organization')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['ab_user.id'], name=op.f('fk_work_report_reviewed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['submitted_by_id'], ['ab_user.id'], name=op.f('fk_work_report_submitted_by_id_ab_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_report')),
    sa.UniqueConstraint('active_key', name=op.f('uq_work_report_active_key'))
    )
    with op.batch_alter_table('work_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_report_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index('ix_work_report_live_month', ['month', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index('ix_work_report_live_status', ['status', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index(batch_op.f('ix_work_report_month'), ['month'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_report_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_report_status'), ['status'], unique=False)



def downgrade():
    # Dropping the table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table('work_report')
