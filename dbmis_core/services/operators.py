"""Operator management: create, deactivate, reset passwords, change roles, unlock; own password;
unlocking a locked workstation; per-operator preferences (the background image).

Administration needs ``manage_operators``; unlocking needs ``supervise_operators`` (supervisors
and administrators); changing one's own password needs only the current password. Every change is
recorded in ``operator_events``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import attrs
from sqlalchemy import func, select

from ..errors import NotFound, PermissionDenied, ValidationError
from ..storage.models import OperatorEventRow, OperatorPreferenceRow, OperatorRow
from .auth import (
    ROLES,
    Operator,
    Perm,
    _hasher,
    authenticate,
    check_password_policy,
    create_operator,
    record_event,
    security_settings,
)

BACKGROUND = "background_image"
MAX_IMAGE_BYTES = 8 * 1024 * 1024
# the image kinds Qt reads without extra plugins, by their first bytes
IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "png", b"\xff\xd8\xff": "jpeg", b"GIF87a": "gif",
               b"GIF89a": "gif", b"BM": "bmp"}


@attrs.frozen
class OperatorInfo:
    login: str
    full_name: str
    role: str
    active: bool
    locked_until: datetime | None
    failed_attempts: int
    must_change_password: bool
    password_changed_at: datetime | None


def _security(app) -> dict:
    return security_settings(app.config.section("security"))


def _station(app) -> str:
    return app.config.station_code


def _row(uow, login: str) -> OperatorRow:
    row = uow.session.scalar(select(OperatorRow).where(OperatorRow.login == login))
    if row is None:
        raise NotFound(f"no operator {login!r}")
    return row


def _info(row: OperatorRow) -> OperatorInfo:
    now = datetime.now(UTC)
    locked = row.locked_until if row.locked_until is not None and row.locked_until > now else None
    return OperatorInfo(row.login, row.full_name, row.role, bool(row.active), locked,
                        row.failed_attempts or 0, bool(row.must_change_password),
                        row.password_changed_at)


def _set_password(row: OperatorRow, password: str, security: dict) -> None:
    check_password_policy(password, row.login, security, list(row.password_history or []))
    digest = _hasher.hash(password)
    keep = int(security["password_history"])
    row.password_history = [digest, *(row.password_history or [])][:max(keep, 1)]
    row.password_hash = digest
    row.password_changed_at = datetime.now(UTC)
    row.failed_attempts, row.locked_until = 0, None


def _other_admins(uow, row: OperatorRow) -> int:
    return uow.session.scalar(select(func.count()).select_from(OperatorRow).where(
        OperatorRow.role == "administrator", OperatorRow.active.is_(True),
        OperatorRow.id != row.id))


def list_operators(app, op: Operator) -> list[OperatorInfo]:
    op.require(Perm.SUPERVISE_OPERATORS)
    with app.uow() as uow:
        rows = uow.session.scalars(select(OperatorRow).order_by(OperatorRow.login)).all()
        return [_info(r) for r in rows]


def get_operator(app, op: Operator, login: str) -> OperatorInfo:
    if login != op.login:
        op.require(Perm.SUPERVISE_OPERATORS)
    with app.uow() as uow:
        return _info(_row(uow, login))


def add_operator(app, op: Operator, login: str, full_name: str, role: str,
                 password: str) -> OperatorInfo:
    """A new operator with a temporary password that must be changed at the first login."""
    op.require(Perm.MANAGE_OPERATORS)
    check_password_policy(password, login, _security(app))
    with app.uow() as uow:
        create_operator(uow, login, full_name, password, role, must_change_password=True)
        uow.session.flush()
        record_event(uow, login, "created", op.login, f"role {role}", _station(app))
        uow.commit()
        return _info(_row(uow, login))


def deactivate(app, op: Operator, login: str) -> OperatorInfo:
    op.require(Perm.MANAGE_OPERATORS)
    if login == op.login:
        raise ValidationError("you cannot deactivate yourself")
    with app.uow() as uow:
        row = _row(uow, login)
        if row.role == "administrator" and row.active and not _other_admins(uow, row):
            raise ValidationError("the last active administrator cannot be deactivated")
        row.active = False
        record_event(uow, login, "deactivated", op.login, station=_station(app))
        uow.commit()
        return _info(row)


def reset_password(app, op: Operator, login: str, new_password: str) -> OperatorInfo:
    """A temporary password from an administrator; the operator must change it at next login."""
    op.require(Perm.MANAGE_OPERATORS)
    with app.uow() as uow:
        row = _row(uow, login)
        _set_password(row, new_password, _security(app))
        row.must_change_password = True
        record_event(uow, login, "password_reset", op.login, station=_station(app))
        uow.commit()
        return _info(row)


def set_role(app, op: Operator, login: str, role: str) -> OperatorInfo:
    op.require(Perm.MANAGE_OPERATORS)
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    with app.uow() as uow:
        row = _row(uow, login)
        if row.role == "administrator" and role != "administrator" and not _other_admins(uow, row):
            raise ValidationError("the last active administrator must stay an administrator")
        old, row.role = row.role, role
        record_event(uow, login, "role_changed", op.login, f"{old} -> {role}", _station(app))
        uow.commit()
        return _info(row)


def unlock(app, op: Operator, login: str) -> OperatorInfo:
    """Lift a lockout before its timeout."""
    op.require(Perm.SUPERVISE_OPERATORS)
    with app.uow() as uow:
        row = _row(uow, login)
        row.failed_attempts, row.locked_until = 0, None
        record_event(uow, login, "unlocked", op.login, station=_station(app))
        uow.commit()
        return _info(row)


def change_password(app, login: str, old_password: str, new_password: str) -> Operator:
    """An operator changes their own password (also the forced change: no permission needed,
    the current password is the proof). A wrong current password counts towards the lockout."""
    with app.uow() as uow:
        authenticate(uow, login, old_password, _security(app), _station(app))
    if new_password == old_password:
        raise ValidationError("the new password must differ from the current one")
    with app.uow() as uow:
        row = _row(uow, login)
        _set_password(row, new_password, _security(app))
        row.must_change_password = False
        record_event(uow, login, "password_changed", login, station=_station(app))
        uow.commit()
        return Operator(row.login, row.full_name, row.role, False)


def unlock_session(app, locked: Operator, login: str, password: str) -> Operator:
    """Unlock a locked workstation: the same operator's password, or a supervisor's or an
    administrator's login (recorded). Returns who unlocked it; the session stays ``locked``'s."""
    if not login:
        raise ValidationError("enter an operator name")
    with app.uow() as uow:
        who = authenticate(uow, login, password, _security(app), _station(app))
        if who.login == locked.login:
            return who
        if not who.can(Perm.SUPERVISE_OPERATORS):
            raise PermissionDenied(f"only {locked.login} or a supervisor can unlock this "
                                   "workstation")
        record_event(uow, locked.login, "session_unlocked", who.login,
                     "workstation unlocked by a supervisor", _station(app))
        uow.commit()
        return who


def events(app, op: Operator, login: str | None = None, limit: int = 200) -> list[dict]:
    op.require(Perm.SUPERVISE_OPERATORS)
    with app.uow() as uow:
        q = select(OperatorEventRow).order_by(OperatorEventRow.id.desc()).limit(limit)
        if login:
            q = q.where(OperatorEventRow.login == login)
        return [{"at": e.at, "login": e.login, "kind": e.kind, "by": e.by_login,
                 "station": e.station, "detail": e.detail} for e in uow.session.scalars(q)]


# -- preferences -----------------------------------------------------------------------------------
def image_kind(data: bytes) -> str | None:
    return next((kind for magic, kind in IMAGE_MAGIC.items() if data.startswith(magic)), None)


def set_background(app, op: Operator, path) -> str:
    """Keep the image file's bytes (not its path) so the background follows the operator to any
    station; the same call the Qt file dialog makes."""
    from pathlib import Path

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read image {p}: {exc.strerror or exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(f"image {p.name} is larger than {MAX_IMAGE_BYTES // 1048576} MB")
    if image_kind(data) is None:
        raise ValidationError(f"{p.name} is not a PNG, JPEG, GIF or BMP image")
    with app.uow() as uow:
        row = _row(uow, op.login)
        pref = uow.session.scalar(select(OperatorPreferenceRow).where(
            OperatorPreferenceRow.operator_id == row.id, OperatorPreferenceRow.name == BACKGROUND))
        if pref is None:
            pref = OperatorPreferenceRow(operator_id=row.id, name=BACKGROUND)
            uow.session.add(pref)
        pref.text_value, pref.blob_value, pref.updated_at = p.name[:255], data, datetime.now(UTC)
        uow.commit()
    return p.name


def clear_background(app, op: Operator) -> None:
    with app.uow() as uow:
        row = _row(uow, op.login)
        pref = uow.session.scalar(select(OperatorPreferenceRow).where(
            OperatorPreferenceRow.operator_id == row.id, OperatorPreferenceRow.name == BACKGROUND))
        if pref is not None:
            uow.session.delete(pref)
            uow.commit()


def background(app, op: Operator) -> tuple[str, bytes] | None:
    """(file name, image bytes) of the operator's background, or None."""
    with app.uow() as uow:
        pref = uow.session.scalar(
            select(OperatorPreferenceRow).join(OperatorRow,
                                               OperatorRow.id == OperatorPreferenceRow.operator_id)
            .where(OperatorRow.login == op.login, OperatorPreferenceRow.name == BACKGROUND))
        return (pref.text_value, pref.blob_value) if pref is not None else None


__all__ = ["OperatorInfo", "list_operators", "get_operator",
           "add_operator", "deactivate", "reset_password", "set_role", "unlock",
           "change_password", "unlock_session", "events", "set_background", "clear_background",
           "background"]
