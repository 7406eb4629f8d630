"""``dbmis backup ...``, ``dbmis archive ...`` and ``dbmis keys ...``.

``dbmis backup auto`` makes the daily backup when it is due and does nothing otherwise, so a cron
job or systemd timer may call it every few minutes (docs/user-guide/backup.md)."""

from __future__ import annotations

import os
import sys

import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import BusinessRuleError


def _info(b) -> dict:
    return {"file": b.file, "kind": b.kind, "backend": b.backend, "created_at": b.created_at,
            "size": b.size, "key_included": b.key_included, "rows": sum(b.counts.values())}


def _line(b) -> str:
    return (f"{b.file}  {b.kind:<7} {b.size / 1e6:9.2f} MB  {sum(b.counts.values()):>10} rows"
            f"  key {'encrypted' if b.key_included else 'not included'}")


@click.group("backup")
def backup_group():
    """Back up, verify and restore the database."""


@backup_group.command("now")
def now():
    """Back up the database now (safe while sales go on)."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    b = backup.take(app, op)
    emit(_info(b), f"backup {b.file} written to {backup.folder(app)} ({b.size} bytes)")


@backup_group.command("auto")
def auto():
    """Make the daily backup if it is due (for cron or a systemd timer), then rotate."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    b = backup.run_scheduled(app, op)
    if b is None:
        emit({"made": None}, "no backup due")
    else:
        emit({"made": _info(b)}, f"daily backup {b.file} written")


@backup_group.command("list")
def list_():
    """Backups in the backup folder, newest first."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    found = backup.list_backups(app, op)
    emit([_info(b) for b in found], "\n".join(_line(b) for b in found) or "no backups")


@backup_group.command("verify")
@click.argument("file")
def verify(file):
    """Check FILE: checksum, integrity, row counts against its manifest, sale references."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    v = backup.verify(app, op, file)
    text = "\n".join([f"{v.file}: {'OK' if v.ok else 'FAILED'}"] + [f"  checked: {c}" for c in v.checks]
                     + [f"  PROBLEM: {p}" for p in v.problems])
    emit({"file": v.file, "ok": v.ok, "problems": list(v.problems), "checks": list(v.checks),
          "counts": v.counts}, text)
    if not v.ok:
        sys.exit(1)


@backup_group.command("restore")
@click.argument("file")
@click.option("--yes", is_flag=True, help="Confirm that the whole database is to be replaced.")
@click.option("--with-keys", is_flag=True,
              help="Also restore the card key file from the backup (passphrase from "
                   "DBMIS_BACKUP_PASSPHRASE or asked for).")
def restore(file, yes, with_keys):
    """Replace the database with FILE, after taking a safety backup of the current one."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    if not yes:
        if not sys.stdin.isatty():
            raise BusinessRuleError("restoring replaces the whole database; add --yes to confirm")
        typed = click.prompt(f"This replaces the whole database with {file}. Type "
                             f"{backup.CONFIRM_WORD} to go on")
        if typed.strip() != backup.CONFIRM_WORD:
            raise BusinessRuleError("not confirmed; nothing was changed")
    secret = None
    if with_keys:
        secret = backup.passphrase(app) or os.environ.get(backup.PASSPHRASE_ENV)
        if secret is None:
            secret = click.prompt("Backup passphrase", hide_input=True)
    r = backup.restore(app, op, file, confirm=True, key_passphrase=secret)
    emit({"restored": r.restored, "safety_backup": r.safety_backup,
          "keys_restored": list(r.keys_restored)},
         f"database restored from {r.restored}; the previous state is in {r.safety_backup}")


@click.group("archive")
def archive_group():
    """Move old closed history into the archive database and back."""


@archive_group.command("run")
@click.option("--older-than-years", type=int, default=None,
              help="Move closed days older than this (default: backup.archive_after_years).")
def archive_run(older_than_years):
    """Move closed days, old meter returns and old service-card log entries to the archive."""
    from dbmis_core.services import archive

    app, op = app_and_operator()
    r = archive.run(app, op, older_than_years)
    moved = ", ".join(f"{n} {t}" for t, n in r.moved.items() if n) or "nothing"
    emit({"cutoff": r.cutoff, "moved": r.moved, "kept_closings": list(r.kept_closings)},
         f"archived (before {r.cutoff}): {moved}")


@archive_group.command("restore")
def archive_restore():
    """Move everything in the archive back into the main database."""
    from dbmis_core.services import archive

    app, op = app_and_operator()
    r = archive.unarchive(app, op)
    moved = ", ".join(f"{n} {t}" for t, n in r.moved.items() if n) or "nothing"
    emit({"moved": r.moved}, f"moved back from the archive: {moved}")


@archive_group.command("status")
def archive_status():
    """Rows held in the archive database."""
    from dbmis_core.services import archive

    app, op = app_and_operator()
    emit(archive.status(app, op))


@click.group("keys")
def keys_group():
    """The card master secret: status, rotation, encrypted export for escrow."""


@keys_group.command("status")
def keys_status():
    """Key file location, permissions, versions and fingerprint (never the secret)."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    emit(backup.key_status(app, op))


@keys_group.command("rotate")
def keys_rotate():
    """Add a new key version and make it current; old cards keep working."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    v = backup.rotate_key(app, op)
    emit({"current_version": v}, f"card key version {v} is now current; back up the key file")


@keys_group.command("export-encrypted")
@click.argument("file", type=click.Path(dir_okay=False))
def keys_export(file):
    """Write the key file encrypted with the backup passphrase into FILE (for escrow)."""
    from dbmis_core.services import backup

    app, op = app_and_operator()
    path = backup.export_key(app, op, file)
    emit({"file": str(path)}, f"encrypted key file written to {path}")
