"""lists: resources matched to needs — a resource category's matching need categories, and
资源对接 (a resource proposed for a need, taken on or declined by its unit) (issue 22)

Revision ID: 0021_need_resources
Revises: 0020_notices
Create Date: 2026-12-06 19:40:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0021_need_resources'
down_revision = '0020_notices'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('need_resource',
    sa.Column('need_id', sa.Integer(), nullable=False),
    sa.Column('resource_id', sa.Integer(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('answered_on', sa.DateTime(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_need_resource_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_need_resource_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_need_resource_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['need_id'], ['need.id'], name=op.f('fk_need_resource_need_id_need')),
    sa.ForeignKeyConstraint(['resource_id'], ['resource.id'], name=op.f('fk_need_resource_resource_id_resource')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_need_resource'))
    )
    with op.batch_alter_table('need_resource', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_need_resource_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index('ix_need_resource_live_created_on', ['created_on', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index('ix_need_resource_live_status', ['status', 'id'], unique=False, postgresql_where=sa.text('deleted_on IS NULL'), sqlite_where=sa.text('deleted_on IS NULL'))
        batch_op.create_index(batch_op.f('ix_need_resource_need_id'), ['need_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_need_resource_resource_id'), ['resource_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_need_resource_status'), ['status'], unique=False)

    with op.batch_alter_table('dictionary', schema=None) as batch_op:
        batch_op.add_column(sa.Column('need_categories', sa.String(length=200), nullable=True))



def downgrade():
    # Dropping the table drops its indexes (MariaDB refuses to drop one a foreign key needs).
    op.drop_table('need_resource')
    with op.batch_alter_table('dictionary', schema=None) as batch_op:
        batch_op.drop_column('need_categories')
