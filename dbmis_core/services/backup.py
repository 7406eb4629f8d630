"""Backups: manual and daily, rotation, verification, restore behind a safety backup.

A backup is a file in the backup folder plus a manifest next to it (``<file>.json``) holding the row
count of every table *as of the backup's own snapshot*, so a later verification can tell a complete
copy from a truncated or damaged one. The card key file goes along only encrypted
(``<file>.key.enc``, dbmis_core.keys), and only when a passphrase is configured.

- SQLite: the online backup API (``sqlite3.Connection.backup`` in one step). In WAL mode the copy
  holds one read snapshot while sales go on, so the copy is one consistent moment; the manifest
  counts are taken from the copy.
- PostgreSQL: ``pg_dump -Fc`` under a snapshot exported by a REPEATABLE READ transaction that also
  counts the rows, so the dump and the manifest describe the same moment.

Verification: SQLite ``PRAGMA integrity_check`` on the copy; PostgreSQL ``pg_restore --list`` and a
restore into a scratch database. Both then compare row counts with the manifest and check that every
sale points at an existing card, meter and customer and that no station's receipt counter is behind
its highest receipt number. See docs/decisions/0011-backup-and-key-escrow.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime, time
from pathlib import Path

import attrs
from sqlalchemy import create_engine, select, text

from ..errors import BusinessRuleError, ConfigError, NotFound, StorageError, ValidationError
from ..keys import KeyStore
from ..storage.models import StationRow
from .auth import Operator, Perm

KINDS = ("manual", "daily", "safety")
PASSPHRASE_ENV = "DBMIS_BACKUP_PASSPHRASE"
CONFIRM_WORD = "RESTORE"
_NAME = re.compile(r"^dbmis-(\d{8}T\d{6}\d{6}Z)-(manual|daily|safety)\.(sqlite3|dump)$")


@attrs.frozen
class BackupInfo:
    file: str
    kind: str
    backend: str
    created_at: datetime
    size: int
    sha256: str
    counts: dict
    key_included: bool
    schema_revision: str | None


@attrs.frozen
class Verification:
    file: str
    ok: bool
    problems: tuple[str, ...]
    counts: dict
    checks: tuple[str, ...]


@attrs.frozen
class RestoreResult:
    restored: str
    safety_backup: str
    keys_restored: tuple[int, ...]


# -- configuration ------------------------------------------------------------------------------


def folder(app) -> Path:
    f = app.config.section("backup").get("folder")
    return Path(f) if f else app.config.home / "backups"


def keep_daily(app) -> int:
    """The database setting (services/settings.py), else the configuration's backup.keep_daily."""
    from .settings import value

    try:
        return value(app, "backup.keep_daily")
    except ValidationError as exc:
        raise ConfigError(f"backup.keep_daily: {exc}") from None


def scheduled_time(app) -> time:
    from .settings import value

    try:
        raw = value(app, "backup.time")
    except ValidationError as exc:
        raise ConfigError(str(exc)) from None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"backup.time {raw!r} is not a time of day like 02:00") from None


def passphrase(app) -> str | None:
    """The passphrase that seals the key file into backups: backup.passphrase_file, else
    $DBMIS_BACKUP_PASSPHRASE, else None (then backups carry no key)."""
    f = app.config.section("backup").get("passphrase_file")
    if f:
        try:
            return Path(f).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read backup passphrase file {f}: {exc.strerror}") from None
    return os.environ.get(PASSPHRASE_ENV) or None


def _backend(app) -> str:
    return "postgresql" if app.engine.dialect.name == "postgresql" else "sqlite"


def _libpq_url(url: str) -> str:
    """A URL pg_dump understands (no SQLAlchemy driver suffix)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _sqlite_path(url: str) -> Path:
    return Path(url.split("///", 1)[-1])


def _tables(conn) -> list[str]:
    """The tables the database actually holds (alembic_version included)."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    else:
        sql = ("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
               "ORDER BY name")
    return list(conn.execute(text(sql)).scalars())


def _count_rows(conn) -> dict[str, int]:
    return {name: conn.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
            for name in _tables(conn)}


# -- taking backups -----------------------------------------------------------------------------


def _new_path(app, kind: str, now: datetime) -> Path:
    d = folder(app)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    ext = "dump" if _backend(app) == "postgresql" else "sqlite3"
    return d / f"dbmis-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{kind}.{ext}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup_sqlite(app, target: Path) -> tuple[dict, str | None]:
    source = sqlite3.connect(_sqlite_path(app.config.database_url), timeout=30)
    dest = sqlite3.connect(target)
    try:
        source.backup(dest)  # pages=-1: the whole database in one step, one read snapshot
        dest.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dest.close()
        source.close()
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(target))
    try:
        with engine.connect() as conn:
            counts = _count_rows(conn)
            rev = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    return counts, rev


def _pg_run(args: list[str], what: str) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(args, capture_output=True, text=True)
    except FileNotFoundError:
        raise StorageError(f"{args[0]} is not installed; install the PostgreSQL client tools "
                           "(Debian: postgresql-client)") from None
    if p.returncode != 0:
        raise StorageError(f"{what} failed: {p.stderr.strip()[-800:]}")
    return p


def _backup_postgres(app, target: Path) -> tuple[dict, str | None]:
    url = _libpq_url(app.config.database_url)
    engine = create_engine(app.config.database_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            counts = _count_rows(conn)
            rev = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            # the dump sees exactly what was counted: same snapshot, kept alive until it ends
            _pg_run(["pg_dump", "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(target),
                     "-d", url], "pg_dump")
            conn.rollback()
    finally:
        engine.dispose()
    return counts, rev


def _write_manifest(path: Path, info: BackupInfo) -> None:
    data = attrs.asdict(info)
    data["created_at"] = info.created_at.isoformat()
    tmp = path.with_name(path.name + ".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.replace(tmp, path.with_name(path.name + ".json"))


def _read_manifest(path: Path) -> BackupInfo:
    m = path.with_name(path.name + ".json")
    try:
        d = json.loads(m.read_text())
        d["created_at"] = datetime.fromisoformat(d["created_at"])
        return BackupInfo(**d)
    except FileNotFoundError:
        raise NotFound(f"backup {path.name} has no manifest ({m.name}); it cannot be verified") \
            from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationError(f"manifest {m.name} is unreadable: {exc}") from None


def take(app, op: Operator, kind: str = "manual", now: datetime | None = None) -> BackupInfo:
    """Back up the database now (consistent while sales go on); returns the manifest."""
    op.require(Perm.BACKUP)
    return _take(app, kind, now)


def _take(app, kind: str, now: datetime | None = None) -> BackupInfo:
    if kind not in KINDS:
        raise ValidationError(f"unknown backup kind {kind!r}; kinds: {', '.join(KINDS)}")
    now = now or datetime.now(UTC)
    target = _new_path(app, kind, now)
    tmp = target.with_name(target.name + ".part")
    try:
        if _backend(app) == "postgresql":
            counts, rev = _backup_postgres(app, tmp)
        else:
            counts, rev = _backup_sqlite(app, tmp)
        os.chmod(tmp, 0o600)
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    key_included = False
    secret = passphrase(app)
    if secret and app.config.master_secret_file.exists():
        blob = KeyStore.load(app.config.master_secret_file).encrypt(secret)
        kf = target.with_name(target.name + ".key.enc")
        kf.write_bytes(blob)
        os.chmod(kf, 0o600)
        key_included = True
    info = BackupInfo(file=target.name, kind=kind, backend=_backend(app), created_at=now,
                      size=target.stat().st_size, sha256=_sha256(target), counts=counts,
                      key_included=key_included, schema_revision=rev)
    _write_manifest(target, info)
    return info


def list_backups(app, op: Operator) -> list[BackupInfo]:
    """Backups in the folder, newest first (files without a readable manifest are skipped)."""
    op.require(Perm.BACKUP)
    return _list(app)


def _list(app) -> list[BackupInfo]:
    d = folder(app)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        if _NAME.match(p.name):
            try:
                found.append(_read_manifest(p))
            except (NotFound, ValidationError):
                continue
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def resolve(app, name: str) -> Path:
    """A backup given by file name (in the backup folder) or path."""
    p = Path(name)
    if not p.is_absolute() and not p.exists():
        p = folder(app) / name
    if not p.is_file():
        raise NotFound(f"no backup file {name}")
    return p


# -- schedule and rotation ----------------------------------------------------------------------


def _local(now: datetime) -> datetime:
    return now.astimezone()


def due(app, now: datetime | None = None) -> bool:
    """True when today's (local) scheduled time has passed and no daily backup was taken today."""
    now = _local(now or datetime.now(UTC))
    if now.time() < scheduled_time(app):
        return False
    today = now.date()
    return not any(b.kind == "daily" and _local(b.created_at).date() == today for b in _list(app))


def run_scheduled(app, op: Operator, now: datetime | None = None) -> BackupInfo | None:
    """The timer's entry point (Qt host timer, ``dbmis backup auto`` from cron or a systemd timer):
    at most one daily backup per day, then rotation. Returns the backup, or None if not due."""
    op.require(Perm.BACKUP)
    now = now or datetime.now(UTC)
    if not due(app, now):
        return None
    info = _take(app, "daily", now)
    rotate(app, op)
    return info


def rotate(app, op: Operator) -> list[str]:
    """Keep the newest ``backup.keep_daily`` daily backups; remove older ones (with manifest and
    key). Manual and safety backups are kept until removed by hand."""
    op.require(Perm.BACKUP)
    daily = [b for b in _list(app) if b.kind == "daily"]
    removed = []
    for b in daily[keep_daily(app):]:
        p = folder(app) / b.file
        for extra in (p.with_name(p.name + ".key.enc"), p.with_name(p.name + ".json"), p):
            extra.unlink(missing_ok=True)
        removed.append(b.file)
    return removed


# -- verification -------------------------------------------------------------------------------


def _consistency(conn) -> tuple[list[str], list[str]]:
    """Checks every copy must pass: sale references and receipt counters."""
    problems, checks = [], []
    for col, table in (("card_id", "cards"), ("meter_id", "meters"), ("customer_id", "customers")):
        n = conn.execute(text(f"SELECT count(*) FROM vends v LEFT JOIN {table} t ON t.id = v.{col} "
                              f"WHERE t.id IS NULL")).scalar_one()
        checks.append(f"sales pointing at a missing {table[:-1]}: {n}")
        if n:
            problems.append(f"{n} sales point at a {table[:-1]} that is not in the backup")
    stations = dict(conn.execute(select(StationRow.code, StationRow.next_receipt)).all())
    for table in ("vends", "cash_entries"):
        rows = conn.execute(text(
            f"SELECT station, max(CAST(substr(receipt_no, length(station) + 2) AS INTEGER)) "
            f"FROM {table} WHERE receipt_no IS NOT NULL GROUP BY station")).all()
        for station, highest in rows:
            nxt = stations.get(station)
            if nxt is None or nxt <= highest:
                problems.append(f"station {station}: receipt counter {nxt} is not past the highest "
                                f"{table} receipt number {highest}")
        checks.append(f"receipt counters past the highest {table} receipt: "
                      f"{'yes' if not any(table in p for p in problems) else 'NO'}")
    return problems, checks


def _compare_counts(expected: dict, actual: dict) -> list[str]:
    problems = []
    for name, n in expected.items():
        got = actual.get(name)
        if got != n:
            problems.append(f"table {name}: {got} rows in the copy, manifest says {n}")
    return problems


def verify(app, op: Operator, name: str) -> Verification:
    """Check a backup: file checksum, integrity, row counts against its manifest, consistency."""
    op.require(Perm.BACKUP)
    path = resolve(app, name)
    info = _read_manifest(path)
    problems, checks = [], []
    if _sha256(path) != info.sha256:
        problems.append("file checksum differs from the manifest (the file was changed or damaged)")
    checks.append("checksum compared with the manifest")
    counts: dict = {}
    if info.backend == "postgresql":
        counts = _verify_postgres(app, path, problems, checks)
    else:
        counts = _verify_sqlite(path, problems, checks)
    if counts:
        problems += _compare_counts(info.counts, counts)
        checks.append(f"row counts of {len(info.counts)} tables compared with the manifest")
    return Verification(path.name, not problems, tuple(problems), counts, tuple(checks))


def _verify_sqlite(path: Path, problems: list, checks: list) -> dict:
    uri = f"file:{path}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        problems.append(f"not a readable SQLite database: {exc}")
        return {}
    checks.append("PRAGMA integrity_check")
    if result != ["ok"]:
        problems.append("integrity check: " + "; ".join(result[:5]))
        conn.close()
        return {}
    conn.close()
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
    try:
        with engine.connect() as c:
            counts = _count_rows(c)
            p, ch = _consistency(c)
    finally:
        engine.dispose()
    problems += p
    checks += ch
    return counts


def _scratch_url(app, name: str) -> str:
    base = _libpq_url(app.config.database_url).rsplit("/", 1)[0]
    return f"{base}/{name}"


def _admin_exec(app, sql: str) -> None:
    engine = create_engine(app.config.database_url.replace("postgresql://",
                                                           "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


def _verify_postgres(app, path: Path, problems: list, checks: list) -> dict:
    try:
        listing = _pg_run(["pg_restore", "--list", str(path)], "pg_restore --list").stdout
    except StorageError as exc:
        problems.append(str(exc))
        return {}
    info = _read_manifest(path)
    missing = [t for t in info.counts if f"TABLE DATA public {t} " not in listing]
    checks.append("pg_restore --list reads the archive's table of contents")
    if missing:
        problems.append(f"the dump holds no data for tables: {', '.join(missing)}")
    scratch = f"dbmis_verify_{uuid.uuid4().hex[:10]}"
    _admin_exec(app, f'CREATE DATABASE "{scratch}"')
    try:
        url = _scratch_url(app, scratch)
        try:
            _pg_run(["pg_restore", "--no-owner", "--exit-on-error", "-d", url, str(path)],
                    "restore into a scratch database")
        except StorageError as exc:
            problems.append(str(exc))
            return {}
        checks.append("restored into a scratch database")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as c:
                counts = _count_rows(c)
                p, ch = _consistency(c)
        finally:
            engine.dispose()
        problems += p
        checks += ch
        return counts
    finally:
        _admin_exec(app, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


# -- restore ------------------------------------------------------------------------------------


def restore(app, op: Operator, name: str, confirm: bool = False,
            key_passphrase: str | None = None) -> RestoreResult:
    """Replace the database with a backup. Needs ``confirm=True`` (hosts ask the operator to type
    RESTORE). The backup is verified first; then a safety backup of the current database is taken,
    and only then is the database replaced. With ``key_passphrase`` the backup's encrypted key file
    is merged into the key file (versions it lacks are added; none is ever removed)."""
    op.require(Perm.BACKUP)
    if not confirm:
        raise BusinessRuleError("restoring replaces the whole database; confirm it explicitly "
                                f"(type {CONFIRM_WORD} or pass --yes)")
    path = resolve(app, name)
    info = _read_manifest(path)
    if info.backend != _backend(app):
        raise ValidationError(f"backup {path.name} is a {info.backend} backup; this database is "
                              f"{_backend(app)}")
    check = verify(app, op, str(path))
    if not check.ok:
        raise BusinessRuleError(f"backup {path.name} failed verification; nothing was changed: "
                                + "; ".join(check.problems[:3]))
    merged = None
    if key_passphrase is not None:
        kf = path.with_name(path.name + ".key.enc")
        if not kf.exists():
            raise NotFound(f"backup {path.name} carries no key file")
        backed = KeyStore.decrypt(kf.read_bytes(), key_passphrase)
        current = app.config.master_secret_file
        merged = KeyStore.load(current).merge(backed) if current.exists() else backed
    safety = _take(app, "safety")
    app.release_connections()  # none may hold the database while it is replaced
    if info.backend == "postgresql":
        _pg_run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
                 "--exit-on-error", "-d", _libpq_url(app.config.database_url), str(path)],
                "pg_restore")
    else:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        dest = sqlite3.connect(_sqlite_path(app.config.database_url), timeout=30)
        try:
            src.backup(dest)
        finally:
            dest.close()
            src.close()
    restored_keys: tuple[int, ...] = ()
    if merged is not None:
        merged.save(app.config.master_secret_file)
        app.__dict__.pop("keys", None)
        app.__dict__.pop("card_format", None)
        restored_keys = merged.versions
    from . import audit  # in the restored database: its chain goes on from the backup's

    with app.uow() as uow:
        audit.record(uow, op, "backup.restore", f"backup {path.name}",
                     {"safety_backup": safety.file, "created_at": info.created_at,
                      "key_versions_merged": list(restored_keys)})
        uow.commit()
    return RestoreResult(path.name, safety.file, restored_keys)


# -- card key management ------------------------------------------------------------------------


def key_status(app, op: Operator) -> dict:
    """Where the key file is, its permissions, versions and fingerprint (never the secrets)."""
    op.require(Perm.MANAGE_KEYS)
    from ..keys import file_modes

    path = app.config.master_secret_file
    store = KeyStore.load(path)
    fmode, dmode = file_modes(path)
    return {"file": str(path), "file_mode": f"{fmode:04o}", "folder_mode": f"{dmode:04o}",
            "current_version": store.current_version, "versions": list(store.versions),
            "fingerprint": store.fingerprint(), "backup_passphrase_set": passphrase(app) is not None}


def rotate_key(app, op: Operator) -> int:
    """Make a new card key version current; cards issued from now on carry it."""
    op.require(Perm.MANAGE_KEYS)
    before = app.keys.current_version
    version = app.keys.rotate(app.config.master_secret_file)
    from . import audit

    with app.uow() as uow:
        audit.record(uow, op, "key.rotate", "card master secret",
                     {"before": before, "after": version})
        uow.commit()
    return version


def export_key(app, op: Operator, target: Path, secret: str | None = None) -> Path:
    """Write the key file sealed with ``secret`` (default: the backup passphrase) for escrow."""
    op.require(Perm.MANAGE_KEYS)
    secret = secret or passphrase(app)
    if not secret:
        raise ValidationError(f"no passphrase: set backup.passphrase_file or {PASSPHRASE_ENV}")
    target = Path(target)
    if target.is_dir():
        raise ValidationError(f"{target} is a folder; give a file name")
    blob = KeyStore.load(app.config.master_secret_file).encrypt(secret)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(blob)
    from . import audit

    with app.uow() as uow:
        audit.record(uow, op, "key.export", "card master secret", {"file": str(target)})
        uow.commit()
    return target
