"""assessment: 年度考核, the annual assessment of communities and units — its indicator set
(weights per level summing to 100) and its results per subject and year, reviewed and published
(issue 26)

Revision ID: 0027_assessment
Revises: 0025_work_report
Create Date: 2026-12-07 01:17:12.346650

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0027_assessment'
down_revision = '0025_work_report'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('assessment_indicator',
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('weight', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('target', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('order', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('active_key', sa.String(length=64), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_assessment_indicator_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_assessment_indicator_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_assessment_indicator_deleted_by_id_ab_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment_indicator')),
    sa.UniqueConstraint('active_key', name=op.f('uq_assessment_indicator_active_key'))
    )
    with op.batch_alter_table('assessment_indicator', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assessment_indicator_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessment_indicator_level'), ['level'], unique=False)
        batch_op.create_index('ix_assessment_indicator_live_level', ['level', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index('ix_assessment_indicator_live_order', ['order', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))

    op.create_table('assessment',
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=12), nullable=False),
    sa.Column('community_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('computed_score', sa.Numeric(precision=6, scale=2), nullable=False),
    sa.Column('adjustment', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('adjustment_reason', sa.String(length=500), nullable=True),
    sa.Column('total', sa.Numeric(precision=6, scale=2), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('scores', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('computed_on', sa.DateTime(), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_on', sa.DateTime(), nullable=True),
    sa.Column('published_on', sa.DateTime(), nullable=True),
    sa.Column('assessment_key', sa.String(length=40), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_assessment_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['community_id'], ['organization.id'], name=op.f('fk_assessment_community_id_organization')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_assessment_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_assessment_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['ab_user.id'], name=op.f('fk_assessment_reviewed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_assessment_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assessment')),
    sa.UniqueConstraint('assessment_key', name=op.f('uq_assessment_assessment_key'))
    )
    with op.batch_alter_table('assessment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assessment_community_id'), ['community_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessment_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessment_level'), ['level'], unique=False)
        batch_op.create_index('ix_assessment_live_rank', ['rank', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index('ix_assessment_live_status', ['status', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index('ix_assessment_live_total', ['total', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index('ix_assessment_live_year', ['year', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index(batch_op.f('ix_assessment_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessment_unit_id'), ['unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assessment_year'), ['year'], unique=False)



def downgrade():
    # Dropping a table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table('assessment')
    op.drop_table('assessment_indicator')
