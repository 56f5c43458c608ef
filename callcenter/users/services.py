"""Staff accounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.audit.models import AuditEntry
from callcenter.users.models import Role, User
from callcenter.users.passwords import hash_password

ADMIN_USERNAME = "admin"


async def ensure_admin(session: AsyncSession, password: str) -> bool:
    """Create the first admin account with ``password`` if no admin exists; True when one was created.

    An existing admin's password is never changed from the environment: rotating it is a logged-in action.
    """
    existing = await session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1))
    if existing is not None:
        return False
    admin = User(username=ADMIN_USERNAME, display_name="系统管理员", password_hash=hash_password(password),
                 role=Role.ADMIN)
    session.add(admin)
    await session.flush()
    session.add(AuditEntry(actor_label="system", action="user.bootstrap_admin", target_type="user",
                           target_id=str(admin.id), details={"username": ADMIN_USERNAME}))
    return True
