"""inspections: a failing finding carries its rectification's responsible unit or node and
its deadline, and saving it opens the task (issue 26)

Revision ID: 0029_finding_rectification
Revises: 0028_inspections
Create Date: 2026-12-07 04:55:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0029_finding_rectification'
down_revision = '0028_inspections'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('inspection_finding', schema=None) as batch_op:
        batch_op.add_column(sa.Column('responsible_unit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('responsible_org_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('deadline', sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f('ix_inspection_finding_responsible_unit_id'),
                              ['responsible_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inspection_finding_responsible_org_id'),
                              ['responsible_org_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_inspection_finding_responsible_unit_id_unit'),
                                    'unit', ['responsible_unit_id'], ['id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_inspection_finding_responsible_org_id_organization'),
            'organization', ['responsible_org_id'], ['id'])
    # The findings that opened a task before this revision take its party and deadline.
    finding = sa.table('inspection_finding', sa.column('id', sa.Integer),
                       sa.column('responsible_unit_id', sa.Integer),
                       sa.column('responsible_org_id', sa.Integer),
                       sa.column('deadline', sa.Date))
    task = sa.table('rectification', sa.column('id', sa.Integer),
                    sa.column('finding_id', sa.Integer), sa.column('lead_unit_id', sa.Integer),
                    sa.column('org_id', sa.Integer), sa.column('deadline', sa.Date))

    def first(column):
        return (sa.select(column).where(task.c.finding_id == finding.c.id)
                .order_by(task.c.id).limit(1).scalar_subquery())
    op.execute(finding.update().values(responsible_unit_id=first(task.c.lead_unit_id),
                                       responsible_org_id=first(task.c.org_id),
                                       deadline=first(task.c.deadline)))


def downgrade():
    with op.batch_alter_table('inspection_finding', schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f('fk_inspection_finding_responsible_org_id_organization'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_inspection_finding_responsible_unit_id_unit'),
                                 type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_inspection_finding_responsible_org_id'))
        batch_op.drop_index(batch_op.f('ix_inspection_finding_responsible_unit_id'))
        batch_op.drop_column('deadline')
        batch_op.drop_column('responsible_org_id')
        batch_op.drop_column('responsible_unit_id')
