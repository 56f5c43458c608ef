"""Running Alembic migrations from the platform (``callcenter db upgrade``) and checking the schema."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from callcenter.config import PROJECT_ROOT, Settings
from callcenter.db.keyring import Keyring, load_or_create
from callcenter.db.session import create_engine


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head", *, keyring: Keyring | None = None) -> None:
    """Bring the schema to ``revision``. Synchronous: Alembic's env runs its own event loop. ``keyring``: the data
    keys migrations seal personal data with (0013); without it they load CC_DATA_KEY_FILE if there is data."""
    config = alembic_config(database_url)
    if keyring is not None:
        config.attributes["keyring"] = keyring
    command.upgrade(config, revision)


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


async def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
    finally:
        await engine.dispose()


def migration_keyring(attributes: dict[str, Any]) -> Keyring:
    """The data keys a migration seals with: those ``upgrade`` was given, else (alembic run by hand) the platform's
    key file, made now if there is none; kept in ``attributes`` for the migration's next batch."""
    keyring = attributes.get("keyring")
    if keyring is None:
        keyring = load_or_create(Settings.from_env().data_key_path, may_create=True)[0]
        attributes["keyring"] = keyring
    return keyring  # type: ignore[no-any-return]
