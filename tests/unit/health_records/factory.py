"""Answers to the GB/T 42195-2022 assessment that add up to a chosen total, and an elder with a community doctor."""

from __future__ import annotations

from callcenter.db.session import Database
from callcenter.elders.models import Contact, ContactRole, Elder
from callcenter.health_records.assessment import ITEMS, MAX_TOTAL


def full_marks() -> dict[str, int]:
    return {item.code: item.max_score for item in ITEMS}


def answers_totalling(total: int, **fixed: int) -> dict[str, int]:
    """Every item at its top score but for ``fixed``, then points taken off item by item (in the standard's order,
    skipping the fixed ones) until the answers add up to ``total``."""
    answers = {**full_marks(), **fixed}
    excess = sum(answers.values()) - total
    assert 0 <= total <= MAX_TOTAL and excess >= 0, (total, fixed)
    for item in ITEMS:
        if excess == 0:
            break
        if item.code in fixed:
            continue
        taken = min(answers[item.code], excess)
        answers[item.code] -= taken
        excess -= taken
    assert excess == 0 and sum(answers.values()) == total
    return answers


async def elder_with_doctor(db: Database, *, name: str = "钱玉珍", doctor: str | None = "李建国医生",
                            address: str = "朝阳区和平里 3 号楼") -> int:
    async with db.transaction() as session:
        elder = Elder(full_name=name, address=address)
        session.add(elder)
        await session.flush()
        session.add(Contact(elder_id=elder.id, role=ContactRole.RELATIVE, name="钱小红", phone="13800138001"))
        if doctor is not None:
            session.add(Contact(elder_id=elder.id, role=ContactRole.DOCTOR, name=doctor, phone="13800138002"))
        return elder.id
