"""Sealed personal data

Sensitive personal information is sealed at rest with the data keys of CC_DATA_KEY_FILE (callcenter.db.sealed):
elders' and volunteers' resident ID numbers (found by a blind-index digest from now on), elders' health conditions,
medications and allergies, elders' and work orders' precise locations, and the rejected rows of roster imports.
Existing values are sealed here, in batches; the key file is made if there is none yet.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:30:00
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000

# (table, column, its type before, NOT NULL, how a value becomes the sealed plaintext and back)
_LIST = (sa.JSON(), True)
_POINT = (sa.Numeric(precision=9, scale=6, asdecimal=False), False)
COLUMNS: tuple[tuple[str, str, Any, bool, bool], ...] = (
    ('elders', 'id_number', sa.String(length=18), False, False),
    ('elders', 'latitude', *_POINT, True),
    ('elders', 'longitude', *_POINT, True),
    ('elders', 'conditions', *_LIST, True),
    ('elders', 'medications', *_LIST, True),
    ('elders', 'allergies', *_LIST, True),
    ('work_orders', 'latitude', *_POINT, True),
    ('work_orders', 'longitude', *_POINT, True),
    ('volunteers', 'id_number', sa.String(length=18), False, False),
    ('roster_imports', 'rejected_rows', *_LIST, True),
)
DIGESTS = {'elders': 'elders.id_number', 'volunteers': 'volunteers.id_number'}


def _keyring() -> Any:
    from callcenter.db.migrate import migration_keyring

    return migration_keyring(context.config.attributes)


def _convert(table: str, columns: list[tuple[str, Any, bool]], *, sealing: bool) -> None:
    """Copy each column into ``<column>_new`` sealed (or opened), in batches by primary key."""
    bind = op.get_bind()
    source = sa.table(table, sa.column('id', sa.Integer()), *(sa.column(name, kind if sealing else sa.Text())
                                                             for name, kind, _ in columns))
    target = sa.table(table, sa.column('id', sa.Integer()),
                      *(sa.column(f'{name}_new', sa.Text() if sealing else kind) for name, kind, _ in columns),
                      sa.column('id_number_digest', sa.String()))
    digest_purpose = DIGESTS.get(table) if sealing else None
    last = 0
    for _ in range(10_000_000 // BATCH + 1):  # bounded: more rows than any city has
        rows = bind.execute(sa.select(source).where(source.c.id > last).order_by(source.c.id).limit(BATCH)).all()
        if not rows:
            return
        keyring = _keyring()
        updates = []
        for row in rows:
            values: dict[str, Any] = {'row_id': row.id}
            for name, _kind, as_json in columns:
                value = getattr(row, name)
                values[f'{name}_new'] = _seal(keyring, table, name, value, as_json) if sealing \
                    else _open(keyring, table, name, value, as_json)
            if digest_purpose is not None:
                from callcenter.db.sealed import blind_index
                values['id_number_digest'] = blind_index(keyring, row.id_number, digest_purpose)
            updates.append(values)
        assignments = {f'{name}_new': sa.bindparam(f'{name}_new') for name, _, _ in columns}
        if digest_purpose is not None:
            assignments['id_number_digest'] = sa.bindparam('id_number_digest')
        bind.execute(target.update().where(target.c.id == sa.bindparam('row_id')).values(assignments), updates)
        last = rows[-1].id
    raise RuntimeError(f"{table}: more rows than this migration is bounded to")


def _seal(keyring: Any, table: str, name: str, value: Any, as_json: bool) -> str | None:
    if value is None:
        return None
    text = json.dumps(value, ensure_ascii=False, separators=(',', ':')) if as_json else str(value)
    return keyring.seal(text.encode(), f'{table}.{name}')


def _open(keyring: Any, table: str, name: str, value: str | None, as_json: bool) -> Any:
    if value is None:
        return None
    text = keyring.open(value, f'{table}.{name}').decode()
    return json.loads(text) if as_json else text


def _tables() -> dict[str, list[tuple[str, Any, bool, bool]]]:
    tables: dict[str, list[tuple[str, Any, bool, bool]]] = {}
    for table, name, kind, not_null, as_json in COLUMNS:
        tables.setdefault(table, []).append((name, kind, not_null, as_json))
    return tables


def _swap(table: str, columns: list[tuple[str, Any, bool, bool]], *, sealing: bool,
          constraints: Callable[[Any], None]) -> None:
    with op.batch_alter_table(table) as batch_op:
        constraints(batch_op)
        for name, kind, not_null, _ in columns:
            batch_op.drop_column(name)
        for name, kind, not_null, _ in columns:
            batch_op.alter_column(f'{name}_new', new_column_name=name, nullable=not not_null,
                                  existing_type=sa.Text() if sealing else kind)


def upgrade() -> None:
    for table, columns in _tables().items():
        # Plain ADD COLUMN on both backends: SQLite adds a column without copying the table.
        for name, _, _, _ in columns:
            op.add_column(table, sa.Column(f'{name}_new', sa.Text(), nullable=True))
        if table in DIGESTS:
            op.add_column(table, sa.Column('id_number_digest', sa.String(length=64), nullable=True))
        _convert(table, [(name, kind, as_json) for name, kind, _, as_json in columns], sealing=True)

        def constraints(batch_op: Any, table: str = table) -> None:
            if table in DIGESTS:
                batch_op.drop_constraint(f'uq_{table}_id_number', type_='unique')
                batch_op.create_unique_constraint(f'uq_{table}_id_number_digest', ['id_number_digest'])

        _swap(table, columns, sealing=True, constraints=constraints)


def downgrade() -> None:
    for table, columns in _tables().items():
        for name, kind, _, _ in columns:
            op.add_column(table, sa.Column(f'{name}_new', kind, nullable=True))
        _convert(table, [(name, kind, as_json) for name, kind, _, as_json in columns], sealing=False)

        def constraints(batch_op: Any, table: str = table) -> None:
            if table in DIGESTS:
                batch_op.drop_constraint(f'uq_{table}_id_number_digest', type_='unique')
                batch_op.drop_column('id_number_digest')
                batch_op.create_unique_constraint(f'uq_{table}_id_number', ['id_number_new'])

        _swap(table, columns, sealing=False, constraints=constraints)
