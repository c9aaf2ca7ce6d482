"""directory: places, services (areas, focal points) and recorded service gaps

Revision ID: 0002_directory
Revises: 55607e9fa3ed
Create Date: 2026-11-24 01:00:22.973538

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0002_directory'
down_revision = '55607e9fa3ed'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('places',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=120), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('level', sa.Enum('country', 'region', 'municipality', name='place_level', native_enum=False, length=20), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['places.id'], name=op.f('fk_places_parent_id_places')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_places')),
    sa.UniqueConstraint('code', name=op.f('uq_places_code'))
    )
    with op.batch_alter_table('places', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_places_parent_id'), ['parent_id'], unique=False)

    op.create_table('services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('service_type', sa.String(length=40), nullable=False),
    sa.Column('sectors', sa.JSON(), nullable=False),
    sa.Column('min_age', sa.Integer(), nullable=True),
    sa.Column('max_age', sa.Integer(), nullable=True),
    sa.Column('sexes', sa.JSON(), nullable=False),
    sa.Column('statuses', sa.JSON(), nullable=False),
    sa.Column('languages', sa.JSON(), nullable=False),
    sa.Column('opening_hours', sa.Text(), nullable=False),
    sa.Column('accepting_referrals', sa.Boolean(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=True),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('sms_phone', sa.String(length=16), nullable=True),
    sa.Column('sms_locale', sa.String(length=8), nullable=False),
    sa.Column('last_verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_services_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_services')),
    sa.UniqueConstraint('organisation_id', 'name', name='uq_services_organisation_name')
    )
    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_services_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_services_service_type'), ['service_type'], unique=False)

    op.create_table('service_focal_users',
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_service_focal_users_service_id_services'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_service_focal_users_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('service_id', 'user_id', name=op.f('pk_service_focal_users'))
    )
    with op.batch_alter_table('service_focal_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_focal_users_user_id'), ['user_id'], unique=False)

    op.create_table('service_places',
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('place_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['place_id'], ['places.id'], name=op.f('fk_service_places_place_id_places'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_service_places_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('service_id', 'place_id', name=op.f('pk_service_places'))
    )
    with op.batch_alter_table('service_places', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_places_place_id'), ['place_id'], unique=False)

    op.create_table('service_gaps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('referral_id', sa.Integer(), nullable=True),
    sa.Column('service_type', sa.String(length=40), nullable=False),
    sa.Column('sector', sa.String(length=10), nullable=True),
    sa.Column('place_code', sa.String(length=120), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_service_gaps_referral_id_referrals'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_gaps')),
    sa.UniqueConstraint('referral_id', 'service_type', name='uq_service_gaps_referral_type')
    )
    with op.batch_alter_table('service_gaps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_gaps_at'), ['at'], unique=False)


def downgrade():
    with op.batch_alter_table('service_gaps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_gaps_at'))
    op.drop_table('service_gaps')

    with op.batch_alter_table('service_places', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_places_place_id'))
    op.drop_table('service_places')

    with op.batch_alter_table('service_focal_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_focal_users_user_id'))
    op.drop_table('service_focal_users')

    with op.batch_alter_table('services', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_services_service_type'))
        batch_op.drop_index(batch_op.f('ix_services_organisation_id'))
    op.drop_table('services')

    with op.batch_alter_table('places', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_places_parent_id'))
    op.drop_table('places')
