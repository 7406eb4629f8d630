"""``dbmis operator``: operator administration and one's own password. Calls services only."""

from __future__ import annotations

import os
import sys

import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import DbmisError, ValidationError

ENV_NEW_PASSWORD = "DBMIS_NEW_PASSWORD"


def _new_password(given: str | None, what: str) -> str:
    """A new password from the option, ``DBMIS_NEW_PASSWORD`` or a prompt (typed twice)."""
    if given:
        return given
    if os.environ.get(ENV_NEW_PASSWORD):
        return os.environ[ENV_NEW_PASSWORD]
    if not sys.stdin.isatty():
        raise ValidationError(f"{what} needs a new password: --password or {ENV_NEW_PASSWORD}")
    return click.prompt(f"{what}", hide_input=True, confirmation_prompt=True)


def _row(o) -> dict:
    return {"login": o.login, "full_name": o.full_name, "role": o.role, "active": o.active,
            "locked_until": o.locked_until, "failed_attempts": o.failed_attempts,
            "must_change_password": o.must_change_password,
            "password_changed_at": o.password_changed_at}


def _line(o) -> str:
    flags = []
    if not o.active:
        flags.append("inactive")
    if o.locked_until is not None:
        from dbmis_core.services.auth import local_hhmm

        flags.append(f"locked until {local_hhmm(o.locked_until)}")
    if o.must_change_password:
        flags.append("must change password")
    return f"{o.login:<16} {o.role:<14} {o.full_name}" + (f"  [{', '.join(flags)}]" if flags else "")


@click.group("operator")
def operator_group():
    """Operators: list, add, deactivate, reset passwords, roles, unlock; your own password."""


@operator_group.command("list")
def operator_list():
    """List operators with their role and lock state (supervisors and administrators)."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    rows = operators.list_operators(app, op)
    emit([_row(o) for o in rows], "\n".join(_line(o) for o in rows))


@operator_group.command("add")
@click.argument("login")
@click.option("--name", "full_name", required=True, help="Full name.")
@click.option("--role", required=True, help="administrator, supervisor, clerk, technician, auditor.")
@click.option("--password", help=f"Temporary password (or {ENV_NEW_PASSWORD}; else asked).")
def operator_add(login, full_name, role, password):
    """Create an operator; the temporary password must be changed at the first login."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    info = operators.add_operator(app, op, login, full_name, role,
                                  _new_password(password, "temporary password"))
    emit(_row(info), f"operator {info.login} ({info.role}) added; the password must be changed "
                     "at the first login")


@operator_group.command("deactivate")
@click.argument("login")
def operator_deactivate(login):
    """Deactivate an operator: they can no longer log in (history is kept)."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    emit(_row(operators.deactivate(app, op, login)), f"operator {login} deactivated")


@operator_group.command("reset-password")
@click.argument("login")
@click.option("--password", help=f"Temporary password (or {ENV_NEW_PASSWORD}; else asked).")
def operator_reset_password(login, password):
    """Give an operator a temporary password; they must change it at the next login."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    info = operators.reset_password(app, op, login, _new_password(password, "temporary password"))
    emit(_row(info), f"password of {login} reset; it must be changed at the next login")


@operator_group.command("set-role")
@click.argument("login")
@click.argument("role")
def operator_set_role(login, role):
    """Change an operator's role."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    emit(_row(operators.set_role(app, op, login, role)), f"operator {login} is now {role}")


@operator_group.command("unlock")
@click.argument("login")
def operator_unlock(login):
    """Lift a lockout after too many wrong passwords (supervisors and administrators)."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    emit(_row(operators.unlock(app, op, login)), f"operator {login} unlocked")


@operator_group.command("events")
@click.argument("login", required=False)
@click.option("--limit", default=50, show_default=True)
def operator_events(login, limit):
    """Security events: failed logins, lockouts, unlocks, password and role changes."""
    from dbmis_core.services import operators

    app, op = app_and_operator()
    rows = operators.events(app, op, login, limit)
    emit(rows, "\n".join(f"{e['at']:%Y-%m-%d %H:%M:%S} {e['station']:<4} {e['login']:<12} "
                         f"{e['kind']:<18} {e['by'] or '':<12} {e['detail']}" for e in rows))


@operator_group.command("passwd")
@click.option("--new-password", help=f"The new password (or {ENV_NEW_PASSWORD}; else asked).")
def operator_passwd(new_password):
    """Change your own password (the operator logged in with --operator/DBMIS_OPERATOR and
    --password/DBMIS_PASSWORD). Works when a change is forced, which blocks every other command."""
    from dbmis_core.services import operators

    app, _ = app_and_operator(need_operator=False)
    root = click.get_current_context().find_root().params
    login = root.get("operator") or os.environ.get("DBMIS_OPERATOR")
    current = root.get("password") if root.get("password") is not None else \
        os.environ.get("DBMIS_PASSWORD")
    if not login:
        if not sys.stdin.isatty():
            raise DbmisError("log in with --operator NAME (or DBMIS_OPERATOR) and a password "
                             "(DBMIS_PASSWORD)")
        login = click.prompt("Operator")
    if current is None:
        if not sys.stdin.isatty():
            raise DbmisError("no password given; set DBMIS_PASSWORD or run interactively")
        current = click.prompt("Current password", hide_input=True)
    op = operators.change_password(app, login, current, _new_password(new_password, "new password"))
    emit({"login": op.login, "changed": True}, f"password of {op.login} changed")
