"""The ``callcenter`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from callcenter.config import ConfigError, Settings
from callcenter.logs import configure_logging

Command = Callable[[Settings, argparse.Namespace], int]


def _serve(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.db.keyring import KeyringError
    from callcenter.ivr.flows import FlowError
    from callcenter.platform import SchemaOutOfDate, serve
    from callcenter.users.services import WeakAdminPassword

    try:
        asyncio.run(serve(settings))
    except FlowError as error:
        print(f"callcenter serve: refusing to start on a broken IVR flow:\n{error}", file=sys.stderr)
        return 2
    except (SchemaOutOfDate, WeakAdminPassword, KeyringError) as error:
        print(f"callcenter serve: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"callcenter serve: cannot listen: {error}", file=sys.stderr)
        return 2
    return 0


def _telemetry(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.db.keyring import KeyringError
    from callcenter.telemetry import serve_telemetry

    try:
        return asyncio.run(serve_telemetry(settings, parent=args.parent))
    except KeyringError as error:
        print(f"callcenter telemetry: {error}", file=sys.stderr)
        return 2


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.data_keys import platform_keyring
    from callcenter.db.migrate import upgrade

    # Migrations seal personal data stored before sealing existed (0013): they need the keys.
    upgrade(settings.database_url, args.revision, keyring=asyncio.run(platform_keyring(settings)))
    print(f"database at {args.revision} ({settings.database_url.split('://', 1)[0]})")
    return 0


def _runtime(settings: Settings):  # noqa: ANN202 - imported lazily to keep --help fast
    from callcenter.asterisk.runtime import AsteriskRuntime

    return AsteriskRuntime.for_settings(settings)


def _asterisk_install(settings: Settings, _args: argparse.Namespace) -> int:
    _runtime(settings).install()
    return 0


def _asterisk_render(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.asterisk.render import render
    from callcenter.data_keys import open_database

    async def run() -> str:
        db = await open_database(settings)
        try:
            return str(await render(settings, _runtime(settings), db))
        finally:
            await db.dispose()

    print(f"rendered Asterisk configuration into {asyncio.run(run())}")
    return 0


def _asterisk_start(settings: Settings, _args: argparse.Namespace) -> int:
    pid = _runtime(settings).start()
    tls = settings.sip_tls
    transports = f"{settings.sip} UDP" + (f", {tls} TLS" if tls is not None else "")
    if tls is not None and settings.sip_tls_required:
        transports += " (devices and phones: TLS and SRTP only)"
    print(f"Asterisk instance {settings.asterisk_instance} running (pid {pid}); SIP on {transports}")
    return 0


def _asterisk_stop(settings: Settings, _args: argparse.Namespace) -> int:
    stopped = _runtime(settings).stop()
    print(f"Asterisk instance {settings.asterisk_instance} {'stopped' if stopped else 'was not running'}")
    return 0


def _asterisk_reload(settings: Settings, _args: argparse.Namespace) -> int:
    _runtime(settings).reload()
    print(f"Asterisk instance {settings.asterisk_instance} reloaded")
    return 0


def _asterisk_status(settings: Settings, _args: argparse.Namespace) -> int:
    runtime = _runtime(settings)
    where = "on PATH" if runtime.root is None else f"in {runtime.root}"
    if not runtime.is_installed():
        print(f"Asterisk not installed ({where}): run `callcenter asterisk install`")
        return 3
    pid = runtime.pid()
    version = runtime.cli("core show version", check=False) if pid else None
    if pid is None or version is None:
        print(f"Asterisk instance {settings.asterisk_instance}: stopped ({runtime.version()}, {where})")
        return 3
    print(f"Asterisk instance {settings.asterisk_instance}: running, pid {pid}; {version.strip()}")
    return 0


def _mqtt_start(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.mosquitto.choice import BrokerMode, choose_broker, platform_password, telemetry_password

    choice = choose_broker(settings)
    if choice.mode is BrokerMode.OFF:
        # Not an error: make run goes on, and the platform runs without the devices' MQTT channel.
        print(f"MQTT off: {choice.reason}. The platform runs without device alarms over MQTT; /healthz says so.")
        return 0
    if choice.broker is None:
        print(f"MQTT: the platform uses {choice.reason}, which it does not manage")
        return 0
    broker = choice.broker
    broker.render(platform_password(settings), telemetry_password(settings))
    running = broker.pid()
    if running is not None:
        # Accounts and ACL are re-read; a changed CC_MQTT_BIND needs `callcenter mqtt stop` first.
        broker.reload()
        print(f"Mosquitto (pid {running}) reloaded; MQTT on {broker.bind}")
        return 0
    pid = broker.start()
    print(f"Mosquitto running (pid {pid}); MQTT on {broker.bind}, configuration in {broker.directory}")
    return 0


def _mqtt_broker(settings: Settings):  # noqa: ANN202 - imported lazily to keep --help fast
    from callcenter.mosquitto.broker import MosquittoBroker

    return MosquittoBroker.for_settings(settings)


def _mqtt_stop(settings: Settings, _args: argparse.Namespace) -> int:
    stopped = _mqtt_broker(settings).stop()
    print(f"Mosquitto {'stopped' if stopped else 'was not running'}")
    return 0


def _mqtt_status(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.mosquitto.choice import BrokerMode, choose_broker

    choice = choose_broker(settings)
    if choice.mode is not BrokerMode.MANAGED or choice.broker is None:
        print(f"MQTT {'off: ' if choice.mode is BrokerMode.OFF else 'on '}{choice.reason} (no managed broker)")
        return 3
    pid = choice.broker.pid()
    if pid is None:
        print(f"Mosquitto: stopped ({choice.broker.directory})")
        return 3
    print(f"Mosquitto: running, pid {pid}; MQTT on {choice.broker.bind}")
    return 0


def _demo_seed(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.data_keys import open_database
    from callcenter.demo import seed
    from callcenter.users.services import WeakAdminPassword

    async def run() -> list[str]:
        db = await open_database(settings)
        try:
            return await seed(db, settings.data_dir, settings.admin_password)
        finally:
            await db.dispose()

    try:
        created = asyncio.run(run())
    except WeakAdminPassword as error:
        print(f"callcenter demo seed: {error}", file=sys.stderr)
        return 2
    if created:
        print("demo data created; credentials (also in " f"{settings.data_dir / 'demo-credentials.txt'}):")
        print("\n".join(f"  {line}" for line in created))
    else:
        print(f"demo data already present; credentials are in {settings.data_dir / 'demo-credentials.txt'}")
    return 0


def _prompts_build(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.ivr.flows import FlowError, load_flows
    from callcenter.ivr.prompts import PromptBuildError, build_prompts, install_prompts, prompts_dir

    try:
        flows = load_flows()
        report = build_prompts(flows.prompts, prompts_dir(settings), recorded_dir=flows.recorded_dir)
    except (FlowError, PromptBuildError) as error:
        print(f"callcenter prompts build: {error}", file=sys.stderr)
        return 2
    print(f"prompts in {prompts_dir(settings)}: {len(report.synthesised)} synthesised, {len(report.recorded)} "
          f"from recordings, {len(report.unchanged)} unchanged, {len(report.removed)} removed")
    copied = install_prompts(settings, _runtime(settings))
    print(f"{copied} prompt files installed into Asterisk instance {settings.asterisk_instance}")
    return 0


def _retention_run(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.data_keys import open_database
    from callcenter.recordings.backends import build_stores
    from callcenter.retention.engine import RetentionBusy, RetentionEngine, RetentionPolicy
    from callcenter.retention.report import ProgressPrinter, format_summary

    async def run() -> int:
        db = await open_database(settings)
        try:
            # Every backend configured (local always, S3 when CC_S3_BUCKET is set): audio goes from its own store.
            engine = RetentionEngine(db, build_stores(settings), RetentionPolicy.from_settings(settings))
            report = await engine.run(dry_run=args.dry_run, progress=ProgressPrinter(sys.stderr))
        except RetentionBusy as busy:
            print(f"callcenter retention run: {busy}", file=sys.stderr)
            return 1
        finally:
            await db.dispose()
        print(format_summary(report))
        return 1 if report.failed else 0

    return asyncio.run(run())


def _elders_import(settings: Settings, args: argparse.Namespace) -> int:
    import getpass
    from pathlib import Path

    from callcenter.audit.services import Actor
    from callcenter.data_keys import open_database
    from callcenter.elders.console import ProgressPrinter, format_summary, report_path
    from callcenter.elders.roster import import_roster, rejected_report

    source = Path(args.file)
    try:
        data = source.read_bytes()
    except OSError as error:
        print(f"callcenter elders import: cannot read {source}: {error.strerror or error}", file=sys.stderr)
        return 2

    async def run() -> int:
        db = await open_database(settings)
        try:
            result = await import_roster(db, source.name, data, dry_run=args.dry_run,
                                         actor=Actor(None, f"cli:{getpass.getuser()}"),
                                         progress=ProgressPrinter(sys.stderr))
        finally:
            await db.dispose()
        report = None
        if result.rejected:
            report = Path(args.report) if args.report else report_path(source)
            report.write_bytes(rejected_report(r.as_json() for r in result.rejected))
        print(format_summary(result, report))
        return 1 if result.error is not None else 0

    return asyncio.run(run())


def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.audit.chain import seal_batch, verify
    from callcenter.data_keys import open_database

    async def run() -> int:
        db = await open_database(settings)
        try:
            if args.seal:
                while (await seal_batch(db)).entries:
                    pass
            verdict = await verify(db)
        finally:
            await db.dispose()
        print(verdict.describe())
        return 0 if verdict.intact else 1

    return asyncio.run(run())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callcenter",
        description="Home and community elderly-care call centre. Configuration comes from CC_* environment "
        "variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run web + REST + WebSocket, the AMI client and the FastAGI server",
                                description="Run the platform in the foreground until SIGINT/SIGTERM.")
    serve.set_defaults(handler=_serve)

    telemetry = commands.add_parser(
        "telemetry", help="take device readings apart from calls (started by `serve` when CC_TELEMETRY_PROCESS is on)",
        description="Run the telemetry process in the foreground until SIGINT/SIGTERM (callcenter/telemetry.py).")
    telemetry.add_argument("--parent", type=int, help="end when the process with this pid ends (the platform's)")
    telemetry.set_defaults(handler=_telemetry)

    db = commands.add_parser("db", help="database schema", description="Manage the database schema.")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (Alembic)",
                                     description="Apply database migrations up to a revision (default: head).")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    upgrade.set_defaults(handler=_db_upgrade)

    asterisk = commands.add_parser("asterisk", help="the Asterisk runtime", description="Manage the Asterisk runtime.")
    asterisk_commands = asterisk.add_subparsers(dest="asterisk_command", required=True, metavar="ACTION")
    for name, handler, text in [
        ("install", _asterisk_install, "use an Asterisk >= 20 on PATH, or build the private Debian sid root"),
        ("render", _asterisk_render, "render config templates and database content into the instance"),
        ("start", _asterisk_start, "start the instance in the background and wait until fully booted"),
        ("stop", _asterisk_stop, "stop the instance"),
        ("status", _asterisk_status, "report whether the instance runs (exit 0) or not (exit 3)"),
        ("reload", _asterisk_reload, "apply a re-rendered configuration without restarting"),
    ]:
        sub = asterisk_commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.set_defaults(handler=handler)

    mqtt = commands.add_parser("mqtt", help="the platform-managed MQTT broker (Mosquitto) for devices",
                               description="Manage the platform-managed Mosquitto (docs/device-protocol.md).")
    mqtt_commands = mqtt.add_subparsers(dest="mqtt_command", required=True, metavar="ACTION")
    for name, handler, text in [
        ("start", _mqtt_start, "render the broker's configuration and accounts, then start it (or reload it when it "
                               "runs); with mosquitto not installed, say MQTT is off and exit 0"),
        ("stop", _mqtt_stop, "stop the broker"),
        ("status", _mqtt_status, "report whether the broker runs (exit 0) or not (exit 3)"),
    ]:
        sub = mqtt_commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        sub.set_defaults(handler=handler)

    demo = commands.add_parser("demo", help="demo data", description="Synthetic demo data (never real people).")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    seed = demo_commands.add_parser("seed", help="insert demo elders, devices and staff (idempotent)",
                                    description="Insert demo elders, devices and staff; idempotent.")
    seed.set_defaults(handler=_demo_seed)

    prompts = commands.add_parser("prompts", help="IVR voice prompts", description="IVR voice prompts.")
    prompts_commands = prompts.add_subparsers(dest="prompts_command", required=True, metavar="ACTION")
    build = prompts_commands.add_parser(
        "build", help="render ivr_flows/prompts.yaml to 8 kHz WAVs and install them into Asterisk",
        description="Synthesise every prompt (espeak-ng; a recording in ivr_flows/recorded/<lang>/<id>.wav wins) "
        "into $CC_DATA_DIR/prompts/<lang>/<id>.wav, skipping those up to date, and copy them into the Asterisk "
        "instance's sounds directory.",
    )
    build.set_defaults(handler=_prompts_build)

    retention = commands.add_parser("retention", help="recordings and call logs past their retention (seed 5.10)",
                                    description="Retention: recordings kept CC_RECORDING_RETENTION_DAYS (>= 92), "
                                    "call logs CC_CALL_LOG_RETENTION_DAYS (>= 1095), legal holds respected.")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    retention_run = retention_commands.add_parser(
        "run", help="delete expired recordings' audio, archive or purge expired call logs, print a summary",
        description="One retention run, as the service does daily: finishes what an interrupted run began, deletes "
        "the audio of recordings past their retention, archives (CC_CALL_LOG_EXPIRY=archive, into "
        "$CC_DATA_DIR/archive) or purges call logs past theirs; nothing under a legal hold or younger than its "
        "floor is touched, and every removal is written to the retention log. Exit 1 when something failed.",
    )
    retention_run.add_argument("--dry-run", action="store_true", help="change nothing; report what a run would do")
    retention_run.set_defaults(handler=_retention_run)

    elders = commands.add_parser("elders", help="elders' files (seed 5.11)", description="Elders' files.")
    elders_commands = elders.add_subparsers(dest="elders_command", required=True, metavar="ACTION")
    elders_import = elders_commands.add_parser(
        "import", help="import the civil-affairs roster (CSV or XLSX): create new elders, update known ones",
        description="Import the civil-affairs roster: a .csv (UTF-8, UTF-8 with BOM or GB18030) or .xlsx file with "
        "the columns 姓名 and 身份证号 and any of 性别, 出生日期, 联系电话, 住址, 社区, 街道/区, 居住状况, 护理等级 "
        "(or their English names). Rows match elders by resident ID: new IDs are created, known ones updated where "
        "they differ, the rest left unchanged; bad rows are rejected with their reasons into a CSV report. A fatal "
        "error (unreadable file, missing column, database error) imports nothing of the file and exits 1.",
    )
    elders_import.add_argument("file", help="the roster file (.csv or .xlsx)")
    elders_import.add_argument("--dry-run", action="store_true", help="check and count only; change nothing")
    elders_import.add_argument("--report", metavar="PATH",
                               help="where to write the rejected rows (default: FILE's name + -rejected.csv)")
    elders_import.set_defaults(handler=_elders_import)

    audit = commands.add_parser("audit", help="the audit log (seed 5.9)", description="The audit log.")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_verify = audit_commands.add_parser(
        "verify", help="check the audit log's hash chain; name the first broken entry",
        description="Walk the audit log's hash chain from its first entry and check every entry's position, "
        "predecessor and content against its SHA-256. Prints 'intact' (and how many recent entries the platform "
        "has not sealed yet) and exits 0, or names the first entry that does not match and exits 1.")
    audit_verify.add_argument("--seal", action="store_true",
                              help="seal the entries not sealed yet first (as the running platform does)")
    audit_verify.set_defaults(handler=_audit_verify)

    keys = commands.add_parser("keys", help="the data keys sealing personal data (CC_DATA_KEY_FILE)",
                               description="The data keys that seal ID numbers, health data and precise locations "
                               "in the database. Back the key file up apart from the database.")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_init = keys_commands.add_parser(
        "init", help="make the key file if there is none (never replaces one)",
        description="Make CC_DATA_KEY_FILE (mode 0600) unless it exists. Refused when it is missing but the "
        "database holds sealed data: restore it from its backup instead.")
    keys_init.set_defaults(handler=_keys_init)
    keys_status = keys_commands.add_parser("status", help="the keys, the current one, and how many values each "
                                           "sealed", description="The key file's keys and how many stored values "
                                           "each one sealed.")
    keys_status.set_defaults(handler=_keys_status)
    keys_rotate = keys_commands.add_parser(
        "rotate", help="seal with a new key from now on and re-seal every stored value with it",
        description="Add a new current key to the key file (older keys stay, so backups still open), then re-seal "
        "every value sealed with an older key, in batches, with a progress bar. Safe while the platform runs: it "
        "picks the new key up within seconds, and values it changes meanwhile are re-sealed in a later pass.")
    keys_rotate.add_argument("--batch", type=_positive, default=500, metavar="N",
                             help="rows re-sealed per transaction (default 500)")
    keys_rotate.set_defaults(handler=_keys_rotate)
    return parser


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError("between 1 and 100000")
    return value


def _keys_init(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.data_keys import platform_keyring

    existed = settings.data_key_path.exists()
    keyring = asyncio.run(platform_keyring(settings))
    verb = "kept" if existed else "made"
    print(f"data keys {verb}: {settings.data_key_path} (current key {keyring.current}); back it up apart from the "
          "database")
    return 0


def _keys_status(settings: Settings, _args: argparse.Namespace) -> int:
    from callcenter.data_keys import key_usage, open_database

    async def run() -> int:
        db = await open_database(settings)
        try:
            usage = await key_usage(db)
        finally:
            await db.dispose()
        print(f"key file: {settings.data_key_path}")
        for key_id in usage.key_ids:
            mark = " (current)" if key_id == usage.current else ""
            print(f"  {key_id}{mark}: {usage.by_key.get(key_id, 0)} value(s)")
        unknown = sorted(set(usage.by_key) - set(usage.key_ids))
        for key_id in unknown:
            print(f"  {key_id} (NOT IN THE KEY FILE): {usage.by_key[key_id]} value(s)")
        return 1 if unknown else 0

    return asyncio.run(run())


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from callcenter.data_keys import open_database, rotate
    from callcenter.progress import TerminalProgress

    bar = TerminalProgress(sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.show(done, total, label="re-sealing", line=f"re-sealed {done} of {total} value(s)")

    async def run() -> int:
        db = await open_database(settings)
        try:
            rotation = await rotate(db, batch=args.batch, progress=progress)
        finally:
            await db.dispose()
        print(f"current key {rotation.new_key}: {rotation.resealed} value(s) re-sealed in {rotation.passes} "
              f"pass(es); older keys stay in {settings.data_key_path} for backups")
        return 0

    return asyncio.run(run())


# Everything the platform writes — the database, the journal, recordings, archives, keys, the rendered Asterisk
# configuration — holds personal data or secrets and is the platform's own: readable and writable by its user only
# (Asterisk runs as the same user, or as root, in every deployment: make run and docker-compose.yml).
PRIVATE_UMASK = 0o077


def main(argv: Sequence[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"callcenter: configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from callcenter.asterisk.runtime import AsteriskRuntimeError
    from callcenter.db.keyring import KeyringError
    from callcenter.mosquitto.broker import MosquittoError

    try:
        return int(args.handler(settings, args))
    except (AsteriskRuntimeError, MosquittoError) as error:
        print(f"callcenter: {error}", file=sys.stderr)
        return 1
    except KeyringError as error:
        print(f"callcenter: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
