"""One page of a query plus the total over all pages, for list endpoints."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

Row = TypeVar("Row")


async def paginate(session: AsyncSession, statement: Select[tuple[Row]], *, limit: int,
                   offset: int) -> tuple[list[Row], int]:
    """``statement`` must carry its ORDER BY (a page of an unordered query is not repeatable)."""
    count: Any = select(func.count()).select_from(statement.order_by(None).subquery())
    total = await session.scalar(count)
    rows = (await session.scalars(statement.limit(limit).offset(offset))).all()
    return list(rows), int(total or 0)
