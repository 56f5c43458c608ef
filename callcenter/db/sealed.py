"""Columns whose values are sealed at rest (AES-GCM, callcenter.db.keyring), and blind indexes to look them up.

A model declares a column ``Sealed("elders.id_number")`` (text) or ``Sealed("elders.conditions", json=True)`` (a
list, a number: anything JSON holds). Python code reads and writes plain values; the database holds only
``cc1:<key id>:…``. The keyring comes from the engine the session is bound to (``Database(url, keyring)``): a
column type has nothing else to reach it by, and a per-engine keyring keeps two databases of one process (tests)
apart without any global.

A sealed column cannot be searched with ``=`` or ``LIKE``. Where a value must be found or kept unique (resident ID
numbers), the model names a digest column in ``__blind_indexes__``; it is filled on every flush from the keyed HMAC
of the value (:func:`blind_index`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Column, MetaData, Text, event, inspect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.types import TypeDecorator

from callcenter.db.keyring import Keyring

KEYRING_ATTRIBUTE = "callcenter_keyring"


def attach_keyring(dialect: Dialect, keyring: Keyring) -> None:
    setattr(dialect, KEYRING_ATTRIBUTE, keyring)


def keyring_of(dialect: Dialect) -> Keyring:
    keyring = getattr(dialect, KEYRING_ATTRIBUTE, None)
    if keyring is None:
        raise RuntimeError("this engine was made without data keys: build it with Database(url, keyring) or "
                           "create_engine(url, keyring=…)")
    return keyring


class _SealedComparator(TypeDecorator.Comparator[Any]):
    """Only IS [NOT] NULL: a sealed value never equals a fresh sealing of the same plain value (a new nonce each
    time), so ``Elder.id_number == x`` would silently find nothing. It fails loudly instead."""

    def operate(self, op: Any, *other: Any, **kwargs: Any) -> Any:
        # Column against column is SQLAlchemy's own bookkeeping (bulk UPDATE synchronisation), never a search.
        against_values = any(not isinstance(item, ColumnElement) or isinstance(item, BindParameter)
                             for item in other if item is not None)
        if not against_values or op in (operators.is_, operators.is_not):
            return super().operate(op, *other, **kwargs)
        raise TypeError(f"a sealed column cannot be searched ({getattr(op, '__name__', op)}): compare its "
                        "blind-index digest column (callcenter.db.sealed.lookup_digest)")


class Sealed(TypeDecorator[Any]):
    """A value sealed with the engine's keyring; ``purpose`` names the column and is authenticated with it."""

    impl = Text
    cache_ok = True
    comparator_factory = _SealedComparator

    def __init__(self, purpose: str, *, json: bool = False) -> None:
        super().__init__()
        self.purpose = purpose
        self.json = json

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":")) if self.json else str(value)
        return keyring_of(dialect).seal(text.encode(), self.purpose)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        text = keyring_of(dialect).open(value, self.purpose).decode()
        return json.loads(text) if self.json else text

    def copy(self, **_kw: Any) -> Sealed:
        return Sealed(self.purpose, json=self.json)


def sealed_columns(metadata: MetaData) -> Iterator[tuple[str, Column[Any], Sealed]]:
    """Every sealed column of the schema, as (table name, column, type): what rotation re-seals."""
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, Sealed):
                yield table.name, column, column.type


def normalise_resident_id(value: str) -> str:
    return value.strip().upper()


def blind_index(keyring: Keyring, value: str | None, purpose: str) -> str | None:
    return None if value is None else keyring.digest(normalise_resident_id(value), purpose)


def session_keyring(session: AsyncSession | Session) -> Keyring:
    bind = session.get_bind()
    return keyring_of(bind.dialect)


def lookup_digest(session: AsyncSession, value: str, purpose: str) -> str:
    """The digest to compare a blind-index column with, for ``value``."""
    digest = blind_index(session_keyring(session), value, purpose)
    assert digest is not None
    return digest


@event.listens_for(Session, "before_flush")
def _fill_blind_indexes(session: Session, _context: Any, _instances: Any) -> None:
    """Keep each declared digest column equal to the HMAC of its value, whatever code set the value."""
    for instance in (*session.new, *session.dirty):
        indexes: dict[str, tuple[str, str]] | None = getattr(type(instance), "__blind_indexes__", None)
        if not indexes:
            continue
        state = inspect(instance)
        for source, (target, purpose) in indexes.items():
            if instance in session.new or state.attrs[source].history.has_changes():
                setattr(instance, target, blind_index(session_keyring(session), getattr(instance, source), purpose))
