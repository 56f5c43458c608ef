"""The platform's data keys over the database: first use, a lost key file, a wrong key, and rotation (also while
another process keeps writing), and `callcenter keys` as an operator runs it."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from callcenter.config import Settings
from callcenter.data_keys import check_keys_open_data, key_usage, platform_keyring, rotate
from callcenter.db.keyring import Keyring, KeyringError
from callcenter.db.session import Database
from callcenter.elders.models import Elder


def _settings(tmp_path: Path, url: str) -> Settings:
    return Settings.from_env({"CC_DATA_DIR": str(tmp_path / "data"), "CC_DATABASE_URL": url})


def _elder(number: int) -> Elder:
    return Elder(full_name=f"老人{number}", id_number=f"1101011940010{number:04d}X"[:18], latitude=34.0 + number / 1000,
                 conditions=[f"病{number}"])


async def _add_elders(db: Database, count: int, start: int = 0) -> None:
    async with db.transaction() as session:
        session.add_all([_elder(number) for number in range(start, start + count)])


async def test_first_use_makes_the_key_file_and_a_lost_one_is_never_replaced(migrated_db_url: str,
                                                                          tmp_path: Path) -> None:
    settings = _settings(tmp_path, migrated_db_url)
    keyring = await platform_keyring(settings)
    assert stat.S_IMODE(settings.data_key_path.stat().st_mode) == 0o600
    db = Database(migrated_db_url, keyring)
    try:
        await _add_elders(db, 1)
        await check_keys_open_data(db)
    finally:
        await db.dispose()
    assert (await platform_keyring(settings)).current == keyring.current

    settings.data_key_path.rename(tmp_path / "elsewhere.json")
    with pytest.raises(KeyringError, match="restore the key file"):
        await platform_keyring(settings)
    assert not settings.data_key_path.exists()

    wrong = Database(migrated_db_url, Keyring.ephemeral())
    try:
        with pytest.raises(KeyringError, match="does not hold"):
            await check_keys_open_data(wrong)
    finally:
        await wrong.dispose()


async def test_rotation_reseals_everything_while_another_process_keeps_writing(migrated_db_url: str,
                                                                               tmp_path: Path) -> None:
    settings = _settings(tmp_path, migrated_db_url)
    keyring = await platform_keyring(settings)
    old_key = keyring.current
    # "The platform": its own keyring instance of the same file, which notices a rotation within 0.2 s.
    platform = Database(migrated_db_url, Keyring.load(settings.data_key_path, reload_seconds=0.2))
    rotating = Database(migrated_db_url, keyring)
    shown: list[tuple[int, int]] = []
    try:
        await _add_elders(platform, 40)

        async def keep_writing() -> None:
            for number in range(40, 60):  # bounded: 20 elders, one every 20 ms
                await _add_elders(platform, 1, start=number)
                await asyncio.sleep(0.02)

        writer = asyncio.create_task(keep_writing())
        rotation = await rotate(rotating, batch=7, progress=lambda done, total: shown.append((done, total)),
                                settle_seconds=0.5)
        await writer
        assert rotation.new_key != old_key and rotation.resealed >= 40 * 5
        assert shown[0][0] == 0 and shown[-1][0] == shown[-1][1] == rotation.resealed

        usage = await key_usage(rotating)
        assert set(usage.key_ids) == {old_key, rotation.new_key}  # the old key stays: backups need it
        written_after = await _stale_values(rotating, old_key)
        assert written_after == 0, "values sealed with the old key remain"
        async with platform.transaction(read_only=True) as session:
            elders = (await session.scalars(select(Elder).order_by(Elder.id))).all()
        assert [e.conditions for e in elders] == [[f"病{n}"] for n in range(60)]
    finally:
        await platform.dispose()
        await rotating.dispose()


async def _stale_values(db: Database, key_id: str) -> int:
    async with db.engine.connect() as connection:
        return int(await connection.scalar(text(
            "SELECT count(*) FROM elders WHERE id_number LIKE :p OR conditions LIKE :p OR latitude LIKE :p"),
            {"p": f"cc1:{key_id}:%"}) or 0)


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "callcenter", "keys", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env}, check=False)


async def test_keys_commands_as_an_operator_runs_them(migrated_db_url: str, tmp_path: Path) -> None:
    env = {"CC_DATA_DIR": str(tmp_path / "data"), "CC_DATABASE_URL": migrated_db_url, "CC_LOG_LEVEL": "error"}
    made = _cli(["init"], env)
    assert made.returncode == 0, made.stderr
    assert "data keys made" in made.stdout
    assert "data keys kept" in _cli(["init"], env).stdout
    keyring = Keyring.load(tmp_path / "data" / "data-keys.json")
    old_key = keyring.current
    db = Database(migrated_db_url, keyring)
    try:
        await _add_elders(db, 25)
    finally:
        await db.dispose()

    status = _cli(["status"], env)
    assert status.returncode == 0, status.stderr
    assert f"{old_key} (current): 125 value(s)" in status.stdout  # 25 × ID, latitude, 3 health lists

    rotated = _cli(["rotate", "--batch", "10"], env)
    assert rotated.returncode == 0, rotated.stderr
    assert "125 value(s) re-sealed" in rotated.stdout
    lines = rotated.stderr.splitlines()  # not a terminal: plain progress lines
    assert lines[0] == "re-sealed 0 of 125 value(s)" and lines[-1] == "re-sealed 125 of 125 value(s)"
    after = _cli(["status"], env).stdout
    assert f"{old_key}: 0 value(s)" in after and "(current): 125 value(s)" in after

    bad = _cli(["rotate", "--batch", "0"], env)
    assert bad.returncode == 2 and "--batch" in bad.stderr
