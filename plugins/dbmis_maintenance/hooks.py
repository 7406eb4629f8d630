"""Registers ``dbmis backup``, ``dbmis archive``, ``dbmis keys``, ``dbmis audit`` and the "Backup and
restore" and "Audit log" pages.
PyQt6 is imported only when the page is built, so the headless host runs without it."""

from dbmis_core.hookspecs import hookimpl
from dbmis_core.types import CliCommand, QtPage


def _group(name):
    def factory():
        from . import cli

        return getattr(cli, f"{name}_group")

    return factory


def _backup_page(ctx):
    from .qt_backup import BackupPage

    return BackupPage(ctx)


def _audit_group():
    from .cli_audit import audit_group

    return audit_group


def _audit_page(ctx):
    from .qt_audit import AuditPage

    return AuditPage(ctx)


@hookimpl
def dbmis_cli_commands():
    return ([CliCommand(name=n, factory=_group(n)) for n in ("backup", "archive", "keys")]
            + [CliCommand(name="audit", factory=_audit_group)])


@hookimpl
def dbmis_qt_pages():
    return [QtPage(name="backup", title="Backup and restore", menu="Settings",
                   factory=_backup_page, permission="backup", order=90),
            QtPage(name="audit", title="Audit log", menu="Settings", factory=_audit_page,
                   permission="view_audit", order=95)]
