"""Sealed columns: the database holds only sealed values, code reads plain ones, and the blind index follows."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from callcenter.db.sealed import lookup_digest
from callcenter.db.session import Database, create_engine
from callcenter.elders.models import ID_NUMBER_INDEX, Elder

ID_NUMBER = "11010119400101001X"


async def test_personal_data_is_sealed_in_the_database_and_plain_in_code(db: Database) -> None:
    async with db.transaction() as session:
        elder = Elder(full_name="测试老人", id_number=ID_NUMBER, latitude=34.035, longitude=113.852,
                      conditions=["高血压"], medications=["硝苯地平"], allergies=["青霉素"])
        session.add(elder)
        await session.flush()
        elder_id = elder.id
    async with db.engine.connect() as connection:
        row = (await connection.execute(text(
            "SELECT id_number, id_number_digest, latitude, longitude, conditions, medications, allergies "
            "FROM elders WHERE id = :id"), {"id": elder_id})).one()
    stored = " ".join(str(value) for value in row)
    for plain in (ID_NUMBER, "34.035", "113.852", "高血压", "硝苯地平", "青霉素"):
        assert plain not in stored
    assert all(str(value).startswith("cc1:") for i, value in enumerate(row) if i != 1)
    async with db.transaction(read_only=True) as session:
        assert row.id_number_digest == lookup_digest(session, ID_NUMBER.lower(), ID_NUMBER_INDEX)
        found = await session.scalar(select(Elder).where(
            Elder.id_number_digest == lookup_digest(session, ID_NUMBER, ID_NUMBER_INDEX)))
        assert found is not None
        assert (found.id_number, found.latitude, found.conditions, found.allergies) == (
            ID_NUMBER, 34.035, ["高血压"], ["青霉素"])


async def test_the_blind_index_follows_every_change(db: Database) -> None:
    async with db.transaction() as session:
        elder = Elder(full_name="测试老人")
        session.add(elder)
        await session.flush()
        assert elder.id_number_digest is None
        elder.id_number = ID_NUMBER
        await session.flush()
        assert elder.id_number_digest == lookup_digest(session, ID_NUMBER, ID_NUMBER_INDEX)
        elder.id_number = None
        await session.flush()
        assert elder.id_number_digest is None


async def test_an_engine_without_keys_refuses_sealed_columns(db: Database) -> None:
    engine = create_engine(db.url)
    try:
        async with engine.connect() as connection:
            with pytest.raises(Exception, match="without data keys"):
                await connection.execute(Elder.__table__.insert().values(
                    full_name="x", id_number=ID_NUMBER, conditions=[], medications=[], allergies=[],
                    language="zh-CN", extra={}))
    finally:
        await engine.dispose()


def test_a_sealed_column_refuses_searches_that_could_only_find_nothing() -> None:
    with pytest.raises(TypeError, match="blind-index digest"):
        select(Elder).where(Elder.id_number == ID_NUMBER)
    with pytest.raises(TypeError, match="cannot be searched"):
        select(Elder).where(Elder.id_number.in_([ID_NUMBER]))
    with pytest.raises(TypeError, match="cannot be searched"):
        select(Elder).where(Elder.conditions.like("%高血压%"))
    select(Elder).where(Elder.id_number.is_(None), Elder.latitude.is_not(None), Elder.id_number == None)  # noqa: E711
