"""Health readings

Health readings (issue 15, seed 5.4/5.5): the readings, their values sealed at rest; the device message ids they
came from (exactly-once intake); an elder's own thresholds; the trends that raised a doctor's follow-up.

On PostgreSQL ``readings`` is partitioned by month on ``measured_at`` (its primary key is ``(id, measured_at)``:
a partitioned table's keys must hold the partition key, which is why the message ids are unique in their own
table). Its partitions live in the schema ``reading_partitions``: a default one, and one per month made by the
function ``readings_ensure_partitions`` — here for last month to three months ahead, then by the readings'
maintenance job (callcenter.readings.partitions). On SQLite it is a plain table.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import callcenter.db.base

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

READING_TYPES = ('blood_pressure', 'heart_rate', 'spo2', 'glucose', 'temperature', 'weight', 'steps')

# Makes the monthly partitions missing from first_month on (UTC months), moving a month's rows out of the default
# partition first when some landed there; returns how many it made.
ENSURE_PARTITIONS = """
CREATE OR REPLACE FUNCTION readings_ensure_partitions(first_month date, months integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    made integer := 0;
    lo timestamptz;
    hi timestamptz;
    part text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        lo := (date_trunc('month', first_month::timestamp) + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := (date_trunc('month', first_month::timestamp) + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part := 'readings_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('reading_partitions.%I', part)) IS NOT NULL;
        IF EXISTS (SELECT 1 FROM reading_partitions.readings_default WHERE measured_at >= lo AND measured_at < hi)
        THEN
            EXECUTE format('CREATE TABLE reading_partitions.%I (LIKE readings INCLUDING DEFAULTS INCLUDING '
                           'CONSTRAINTS)', part);
            EXECUTE format('INSERT INTO reading_partitions.%I SELECT * FROM reading_partitions.readings_default '
                           'WHERE measured_at >= $1 AND measured_at < $2', part) USING lo, hi;
            DELETE FROM reading_partitions.readings_default WHERE measured_at >= lo AND measured_at < hi;
            EXECUTE format('ALTER TABLE readings ATTACH PARTITION reading_partitions.%I FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE reading_partitions.%I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)',
                           part, lo, hi);
        END IF;
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$
"""


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _reading_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == 'postgresql'
    # PostgreSQL: the key holds the partition key. SQLite: id alone, its rowid (the model's key is (id,
    # measured_at) on both; SQLite numbers only a single-column INTEGER PRIMARY KEY).
    key = ('id', 'measured_at') if postgresql else ('id',)
    op.create_table('readings',
    sa.Column('id', _reading_id(), autoincrement=True, nullable=False),
    sa.Column('measured_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=True),
    sa.Column('device_id', sa.Integer(), nullable=True),
    sa.Column('type', _enum('reading_type', *READING_TYPES), nullable=False),
    sa.Column('source', _enum('reading_source', 'mqtt', 'http', 'manual'), nullable=False),
    sa.Column('values', sa.Text(), nullable=False),  # sealed (callcenter.db.sealed)
    sa.Column('details', sa.Text(), nullable=True),  # sealed
    sa.Column('received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('entered_by_id', sa.Integer(), nullable=True),
    sa.Column('entered_by', sa.String(length=100), nullable=True),
    sa.Column('alarm_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['alarm_id'], ['alarms.id'], name=op.f('fk_readings_alarm_id_alarms'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_readings_device_id_devices'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_readings_elder_id_elders'),
                            ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['entered_by_id'], ['users.id'], name=op.f('fk_readings_entered_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint(*key, name=op.f('pk_readings')),
    postgresql_partition_by='RANGE (measured_at)',
    )
    op.create_index('ix_readings_elder_id_type_measured_at', 'readings', ['elder_id', 'type', 'measured_at'],
                    unique=False)
    if postgresql:
        op.execute('CREATE SCHEMA IF NOT EXISTS reading_partitions')
        op.execute('CREATE TABLE reading_partitions.readings_default PARTITION OF readings DEFAULT')
        op.execute(ENSURE_PARTITIONS)
        op.execute("SELECT readings_ensure_partitions((date_trunc('month', now() AT TIME ZONE 'UTC') "
                   "- interval '1 month')::date, 5)")
    op.create_table('reading_messages',
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=64), nullable=False),
    sa.Column('reading_id', _reading_id(), nullable=False),
    sa.Column('measured_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_reading_messages_device_id_devices'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('device_id', 'message_id', name=op.f('pk_reading_messages'))
    )
    op.create_index(op.f('ix_reading_messages_measured_at'), 'reading_messages', ['measured_at'], unique=False)
    op.create_table('reading_thresholds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('type', _enum('reading_type', *READING_TYPES), nullable=False),
    sa.Column('measure', sa.String(length=32), nullable=False),
    sa.Column('limits', sa.Text(), nullable=False),  # sealed
    sa.Column('note', sa.Text(), nullable=True),  # sealed
    sa.Column('doctor_contact_id', sa.Integer(), nullable=True),
    sa.Column('doctor_name', sa.String(length=100), nullable=False),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    sa.Column('set_by', sa.String(length=100), nullable=False),
    sa.Column('set_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['doctor_contact_id'], ['contacts.id'],
                            name=op.f('fk_reading_thresholds_doctor_contact_id_contacts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_reading_thresholds_elder_id_elders'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['set_by_id'], ['users.id'], name=op.f('fk_reading_thresholds_set_by_id_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reading_thresholds')),
    sa.UniqueConstraint('elder_id', 'type', 'measure', name=op.f('uq_reading_thresholds_elder_id_type_measure'))
    )
    op.create_index(op.f('ix_reading_thresholds_elder_id'), 'reading_thresholds', ['elder_id'], unique=False)
    op.create_table('reading_trends',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('elder_id', sa.Integer(), nullable=False),
    sa.Column('type', _enum('reading_type', *READING_TYPES), nullable=False),
    sa.Column('started_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('readings_above', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('ended_at', callcenter.db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['elder_id'], ['elders.id'], name=op.f('fk_reading_trends_elder_id_elders'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['work_order_id'], ['work_orders.id'],
                            name=op.f('fk_reading_trends_work_order_id_work_orders'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reading_trends'))
    )
    op.create_index(op.f('ix_reading_trends_elder_id'), 'reading_trends', ['elder_id'], unique=False)
    op.create_index('uq_reading_trends_open', 'reading_trends', ['elder_id', 'type'], unique=True,
                    sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_reading_trends_open', table_name='reading_trends')
    op.drop_index(op.f('ix_reading_trends_elder_id'), table_name='reading_trends')
    op.drop_table('reading_trends')
    op.drop_index(op.f('ix_reading_thresholds_elder_id'), table_name='reading_thresholds')
    op.drop_table('reading_thresholds')
    op.drop_index(op.f('ix_reading_messages_measured_at'), table_name='reading_messages')
    op.drop_table('reading_messages')
    op.drop_index('ix_readings_elder_id_type_measured_at', table_name='readings')
    op.drop_table('readings')  # its partitions with it
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS readings_ensure_partitions(date, integer)')
        op.execute('DROP SCHEMA IF EXISTS reading_partitions CASCADE')
