"""Database plumbing shared by every domain package: the declarative base, types and sessions."""

from callcenter.db.base import Base, UTCDateTime, utcnow
from callcenter.db.session import Database

__all__ = ["Base", "Database", "UTCDateTime", "utcnow"]
