"""joint meetings: bodies, members, meetings, attendance, agenda, resolutions, supervision

Revision ID: 0004_meetings
Revises: 0003_cobuild
Create Date: 2026-11-22 00:10:26.892118

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_meetings'
down_revision = '0003_cobuild'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('joint_body',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=4), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('xun_enabled', sa.Boolean(), nullable=False),
    sa.Column('xun_days', sa.String(length=32), nullable=False),
    sa.Column('monthly_enabled', sa.Boolean(), nullable=False),
    sa.Column('monthly_day', sa.Integer(), nullable=False),
    sa.Column('quarterly_enabled', sa.Boolean(), nullable=False),
    sa.Column('quarterly_day', sa.Integer(), nullable=False),
    sa.Column('yearly_enabled', sa.Boolean(), nullable=False),
    sa.Column('yearly_month', sa.Integer(), nullable=False),
    sa.Column('yearly_day', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_joint_body_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_joint_body_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_joint_body_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['host_id'], ['organization.id'], name=op.f('fk_joint_body_host_id_organization')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_joint_body'))
    )

    with op.batch_alter_table('joint_body', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_joint_body_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_joint_body_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_joint_body_level'), ['level'], unique=False)
        batch_op.create_index(batch_op.f('ix_joint_body_name'), ['name'], unique=False)

    op.create_table('body_member',
    sa.Column('body_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('representative', sa.String(length=50), nullable=True),
    sa.Column('representative_title', sa.String(length=50), nullable=True),
    sa.Column('member_key', sa.String(length=24), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['body_id'], ['joint_body.id'], name=op.f('fk_body_member_body_id_joint_body')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_body_member_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_body_member_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_body_member_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_body_member_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_body_member')),
    sa.UniqueConstraint('member_key', name=op.f('uq_body_member_member_key'))
    )

    with op.batch_alter_table('body_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_body_member_body_id'), ['body_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_body_member_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_body_member_unit_id'), ['unit_id'], unique=False)

    op.create_table('meeting',
    sa.Column('body_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('planned_date', sa.Date(), nullable=False),
    sa.Column('held_on', sa.Date(), nullable=True),
    sa.Column('place', sa.String(length=200), nullable=True),
    sa.Column('chair', sa.String(length=50), nullable=True),
    sa.Column('recorder', sa.String(length=50), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('minutes', sa.Text(), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('plan_key', sa.String(length=40), nullable=True),
    sa.Column('cadence_date', sa.Date(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['body_id'], ['joint_body.id'], name=op.f('fk_meeting_body_id_joint_body')),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_meeting_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_meeting_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_meeting_deleted_by_id_ab_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting')),
    sa.UniqueConstraint('plan_key', name=op.f('uq_meeting_plan_key'))
    )

    with op.batch_alter_table('meeting', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_body_id'), ['body_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_held_on'), ['held_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_planned_date'), ['planned_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_type'), ['type'], unique=False)

    op.create_table('agenda_item',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('proposing_unit_id', sa.Integer(), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_agenda_item_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_agenda_item_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_agenda_item_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_agenda_item_meeting_id_meeting')),
    sa.ForeignKeyConstraint(['proposing_unit_id'], ['unit.id'], name=op.f('fk_agenda_item_proposing_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agenda_item'))
    )

    with op.batch_alter_table('agenda_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agenda_item_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_agenda_item_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agenda_item_proposing_unit_id'), ['proposing_unit_id'], unique=False)

    op.create_table('attendance',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('attendee', sa.String(length=50), nullable=True),
    sa.Column('attendee_level', sa.String(length=8), nullable=True),
    sa.Column('status', sa.String(length=4), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('attendance_key', sa.String(length=24), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_attendance_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_attendance_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_attendance_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_attendance_meeting_id_meeting')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_attendance_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attendance')),
    sa.UniqueConstraint('attendance_key', name=op.f('uq_attendance_attendance_key'))
    )

    with op.batch_alter_table('attendance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_attendance_attendee_level'), ['attendee_level'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_attendance_unit_id'), ['unit_id'], unique=False)

    op.create_table('meeting_attachment',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('stored_name', sa.String(length=64), nullable=False),
    sa.Column('content_type', sa.String(length=100), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_meeting_attachment_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_meeting_attachment_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_meeting_attachment_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_meeting_attachment_meeting_id_meeting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meeting_attachment')),
    sa.UniqueConstraint('stored_name', name=op.f('uq_meeting_attachment_stored_name'))
    )

    with op.batch_alter_table('meeting_attachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meeting_attachment_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_meeting_attachment_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('resolution',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('lead_unit_id', sa.Integer(), nullable=False),
    sa.Column('deadline', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('closed_on', sa.Date(), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_resolution_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_resolution_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_resolution_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['lead_unit_id'], ['unit.id'], name=op.f('fk_resolution_lead_unit_id_unit')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meeting.id'], name=op.f('fk_resolution_meeting_id_meeting')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_resolution'))
    )

    with op.batch_alter_table('resolution', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resolution_closed_on'), ['closed_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_resolution_deadline'), ['deadline'], unique=False)
        batch_op.create_index(batch_op.f('ix_resolution_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_resolution_lead_unit_id'), ['lead_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_resolution_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_resolution_status'), ['status'], unique=False)

    op.create_table('resolution_co_unit',
    sa.Column('resolution_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['resolution_id'], ['resolution.id'], name=op.f('fk_resolution_co_unit_resolution_id_resolution')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_resolution_co_unit_unit_id_unit')),
    sa.PrimaryKeyConstraint('resolution_id', 'unit_id', name=op.f('pk_resolution_co_unit'))
    )

    with op.batch_alter_table('resolution_co_unit', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_resolution_co_unit_unit_id'), ['unit_id'], unique=False)

    op.create_table('supervision_note',
    sa.Column('resolution_id', sa.Integer(), nullable=False),
    sa.Column('note_date', sa.Date(), nullable=False),
    sa.Column('author', sa.String(length=50), nullable=True),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('progress', sa.Integer(), nullable=True),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.DateTime(), nullable=False),
    sa.Column('changed_on', sa.DateTime(), nullable=False),
    sa.Column('deleted_on', sa.DateTime(), nullable=True),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('changed_by_id', sa.Integer(), nullable=True),
    sa.Column('deleted_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['changed_by_id'], ['ab_user.id'], name=op.f('fk_supervision_note_changed_by_id_ab_user')),
    sa.ForeignKeyConstraint(['created_by_id'], ['ab_user.id'], name=op.f('fk_supervision_note_created_by_id_ab_user')),
    sa.ForeignKeyConstraint(['deleted_by_id'], ['ab_user.id'], name=op.f('fk_supervision_note_deleted_by_id_ab_user')),
    sa.ForeignKeyConstraint(['resolution_id'], ['resolution.id'], name=op.f('fk_supervision_note_resolution_id_resolution')),
    sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], name=op.f('fk_supervision_note_unit_id_unit')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_supervision_note'))
    )

    with op.batch_alter_table('supervision_note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_supervision_note_deleted_on'), ['deleted_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_note_note_date'), ['note_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_note_resolution_id'), ['resolution_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_supervision_note_unit_id'), ['unit_id'], unique=False)


def downgrade():
    # Tables only, children first: MariaDB refuses to drop an index a foreign key uses.
    op.drop_table('supervision_note')
    op.drop_table('resolution_co_unit')
    op.drop_table('resolution')
    op.drop_table('meeting_attachment')
    op.drop_table('attendance')
    op.drop_table('agenda_item')
    op.drop_table('meeting')
    op.drop_table('body_member')
    op.drop_table('joint_body')
