"""follow-up: deadlines, notifications, opt-outs

Revision ID: 0007_follow_up
Revises: 0006_sms_inbound
Create Date: 2026-11-24 03:12:56.953408

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007_follow_up'
down_revision = '0006_sms_inbound'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sms_opt_outs',
    sa.Column('phone', sa.String(length=16), nullable=False),
    sa.Column('opted_out_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.PrimaryKeyConstraint('phone', name=op.f('pk_sms_opt_outs'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=True),
    sa.Column('target_id', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_notifications_referral_id_referrals'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['target_id'], ['referral_targets.id'], name=op.f('fk_notifications_target_id_referral_targets'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_referral_id'), ['referral_id'], unique=False)
        batch_op.create_index('ix_notifications_user_read', ['user_id', 'read_at'], unique=False)

    with op.batch_alter_table('referral_targets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sends', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('delivery_failed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('follow_up', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('followed_up_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('followed_up_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('replaces_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_referral_targets_followed_up_by_id_users'), 'users', ['followed_up_by_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_referral_targets_replaces_id_referral_targets'), 'referral_targets', ['replaces_id'], ['id'], ondelete='SET NULL')

    # Targets sent before deadlines were followed: their deadline started when they were created.
    op.execute("UPDATE referral_targets SET sent_at = created_at WHERE status <> 'blocked'")

    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default='message'))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('notify_by_sms', sa.Boolean(), nullable=False, server_default=sa.false()))

    with op.batch_alter_table('workflow_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_message', sa.String(length=100), nullable=True))



def downgrade():
    with op.batch_alter_table('workflow_instances', schema=None) as batch_op:
        batch_op.drop_column('pending_message')

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('notify_by_sms')
        batch_op.drop_column('phone')

    with op.batch_alter_table('sms_outbox', schema=None) as batch_op:
        batch_op.drop_column('kind')

    with op.batch_alter_table('referral_targets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_referral_targets_replaces_id_referral_targets'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_referral_targets_followed_up_by_id_users'), type_='foreignkey')
        batch_op.drop_column('replaces_id')
        batch_op.drop_column('followed_up_by_id')
        batch_op.drop_column('followed_up_at')
        batch_op.drop_column('follow_up')
        batch_op.drop_column('delivery_failed_at')
        batch_op.drop_column('escalated_at')
        batch_op.drop_column('reminded_at')
        batch_op.drop_column('sends')
        batch_op.drop_column('sent_at')

    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_user_read')
        batch_op.drop_index(batch_op.f('ix_notifications_referral_id'))

    op.drop_table('notifications')
    op.drop_table('sms_opt_outs')
