"""imports: the values a user mapped on the import page, remembered for its next files (issue 19)

Revision ID: 0024_import_value_maps
Revises: 0023_need_code
Create Date: 2026-12-06 23:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0024_import_value_maps'
down_revision = '0023_need_code'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'import_value_map',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('resource', sa.String(length=50), nullable=False),
        sa.Column('field', sa.String(length=50), nullable=False),
        sa.Column('word', sa.String(length=200), nullable=False),
        sa.Column('value', sa.String(length=64), nullable=False),
        sa.Column('changed_on', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['ab_user.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('uq_import_value_map', 'import_value_map',
                    ['user_id', 'resource', 'field', 'word'], unique=True)


def downgrade():
    # The table with its index: MariaDB refuses to drop the index alone (the user_id foreign
    # key needs an index, and this is the one it uses).
    op.drop_table('import_value_map')
