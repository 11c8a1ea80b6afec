"""import words: a dictionary entry's aliases (别名) and an organisation's short name (简称)
(issue 19)

An import resolves a dictionary value by code, label or alias, and names a community by its
Party organisation's name or its area's. The shipped default entries get their aliases from
`flask gongjian init` (app/services/defaults.py), which fills an alias only where none is set.

Revision ID: 0010_import_words
Revises: 0009_utc_timestamps
Create Date: 2026-12-06 16:30:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0010_import_words'
down_revision = '0009_utc_timestamps'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dictionary', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alias', sa.String(length=200), nullable=True))
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.add_column(sa.Column('short_name', sa.String(length=50), nullable=True))


def downgrade():
    with op.batch_alter_table('organization', schema=None) as batch_op:
        batch_op.drop_column('short_name')
    with op.batch_alter_table('dictionary', schema=None) as batch_op:
        batch_op.drop_column('alias')
