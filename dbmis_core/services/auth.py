"""Operators, roles and permissions; passwords hashed with argon2id.

Logging in counts failures in the ``operators`` row itself (an atomic ``failed_attempts + 1``), so
a lockout holds across stations and processes; see docs/user-guide/login-and-security.md.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update

from ..errors import AuthenticationError, PermissionDenied, ValidationError
from ..storage.models import OperatorEventRow, OperatorRow

_hasher = PasswordHasher()


class Perm(enum.StrEnum):
    VEND = "vend"
    READ_CARD = "read_card"
    ISSUE_CARD = "issue_card"
    MANAGE_CUSTOMERS = "manage_customers"
    MANAGE_METERS = "manage_meters"
    MANAGE_OPERATORS = "manage_operators"
    RECONCILE = "reconcile"
    VIEW = "view"
    WRITE_SERVICE_CARDS = "write_service_cards"
    MANAGE_APPLICATIONS = "manage_applications"
    MANAGE_TARIFFS = "manage_tariffs"
    REISSUE_CARD = "reissue_card"
    REVERSE_SALE = "reverse_sale"
    CHANGE_METER = "change_meter"
    CLOSE_ACCOUNT = "close_account"
    MANAGE_DEBTS = "manage_debts"
    CLOSE_DAY = "close_day"
    CLOSE_ANY_DAY = "close_any_day"
    # see the operator list, unlock locked-out operators and another operator's locked workstation
    SUPERVISE_OPERATORS = "supervise_operators"
    BACKUP = "backup"            # back up, verify, restore, archive (administrator, supervisor)
    MANAGE_KEYS = "manage_keys"  # rotate and export the card master secret (administrator)
    ANALYSE = "analyse"  # compute consumption and rank customers for inspection
    MANAGE_INSPECTIONS = "manage_inspections"  # work orders: create, assign, record the outcome
    VIEW_REPORTS = "view_reports"  # run and export reports (not technicians: docs/decisions/0014)
    VIEW_AUDIT = "view_audit"  # read and verify the audit log (docs/decisions/0015)
    # system parameters, code tables and personnel records (administrator, supervisor)
    MANAGE_SETTINGS = "manage_settings"


ROLES: dict[str, frozenset[Perm]] = {
    "administrator": frozenset(Perm),
    "supervisor": frozenset(set(Perm) - {Perm.MANAGE_OPERATORS, Perm.MANAGE_KEYS}),
    "clerk": frozenset({Perm.VEND, Perm.READ_CARD, Perm.ISSUE_CARD, Perm.MANAGE_CUSTOMERS,
                        Perm.RECONCILE, Perm.VIEW, Perm.MANAGE_APPLICATIONS, Perm.REISSUE_CARD,
                        Perm.CLOSE_DAY, Perm.VIEW_REPORTS}),
    "technician": frozenset({Perm.READ_CARD, Perm.MANAGE_METERS, Perm.VIEW,
                             Perm.WRITE_SERVICE_CARDS, Perm.MANAGE_INSPECTIONS}),
    "auditor": frozenset({Perm.VIEW, Perm.READ_CARD, Perm.VIEW_REPORTS, Perm.VIEW_AUDIT}),
}


@attrs.frozen
class Operator:
    """The authenticated operator a service call runs as."""

    login: str
    full_name: str
    role: str
    # set after first login or an administrator's reset: nothing is allowed until it is changed
    must_change_password: bool = False

    def can(self, perm: Perm) -> bool:
        return perm in ROLES.get(self.role, frozenset())

    def require(self, perm: Perm) -> None:
        if self.must_change_password:
            raise PasswordChangeRequired(
                f"operator {self.login} must change the password first "
                "(dbmis operator passwd, or log in again at the workstation)")
        if not self.can(perm):
            raise PermissionDenied(f"operator {self.login} ({self.role}) may not {perm.value}")


class PasswordChangeRequired(PermissionDenied):
    """The operator must change the password before doing anything else."""


class OperatorLocked(AuthenticationError):
    """Too many wrong passwords: refused, even with the right one, until ``until``."""

    def __init__(self, login: str, until: datetime) -> None:
        super().__init__(f"operator {login} is locked until {local_hhmm(until)} after too many "
                         "wrong passwords; ask a supervisor to unlock")
        self.until = until


def local_hhmm(t: datetime) -> str:
    """Times are stored in UTC; people read the station's local time."""
    return t.astimezone().strftime("%H:%M")


SECURITY_DEFAULTS = {"min_length": 10, "password_history": 3, "lockout_attempts": 5,
                     "lockout_minutes": 15, "idle_lock_minutes": 10}


def security_settings(security: Mapping | None) -> dict:
    return {**SECURITY_DEFAULTS, **(security or {})}


def check_password_policy(password: str, login: str, security: Mapping | None = None,
                          history: list[str] = ()) -> None:
    """The policy for every NEW password; ``history`` are the hashes it may not repeat."""
    cfg = security_settings(security)
    if not isinstance(password, str) or len(password) < int(cfg["min_length"]):
        raise ValidationError(f"a password needs at least {cfg['min_length']} characters")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise ValidationError("a password needs both letters and digits")
    if login and login.casefold() in password.casefold():
        raise ValidationError("a password may not contain the operator's login")
    for old in list(history)[: int(cfg["password_history"])]:
        try:
            if _hasher.verify(old, password):
                raise ValidationError(f"a password may not repeat one of the last "
                                      f"{cfg['password_history']} passwords")
        except (VerificationError, InvalidHashError):
            continue


def record_event(uow, login: str, kind: str, by_login: str | None = None, detail: str = "",
                 station: str = "") -> None:
    uow.session.add(OperatorEventRow(login=login, kind=kind, by_login=by_login, detail=detail,
                                     station=station))
    from . import audit  # every operator event is also an audit record (never a password)

    audit.record(uow, by_login, f"operator.{kind}", f"operator {login}", {"detail": detail},
                 station=station or None)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValidationError("a password needs at least 8 characters")
    return _hasher.hash(password)


def create_operator(uow, login: str, full_name: str, password: str, role: str,
                    must_change_password: bool = False) -> Operator:
    """Low-level creation used by ``dbmis init``, demo data and tests (8 characters at least).
    People create operators through services/operators.py, which applies the full policy and
    forces a change at the first login."""
    login = (login or "").strip()
    if not login or not login.isidentifier():
        raise ValidationError(f"operator login {login!r} must be letters, digits or _")
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if uow.session.scalar(select(OperatorRow).where(OperatorRow.login == login)):
        raise ValidationError(f"operator {login} already exists")
    digest = hash_password(password)
    uow.session.add(OperatorRow(login=login, full_name=full_name or login, password_hash=digest,
                                role=role, must_change_password=must_change_password,
                                password_history=[digest], password_changed_at=datetime.now(UTC)))
    return Operator(login, full_name or login, role, must_change_password)


def authenticate(uow, login: str, password: str, security: Mapping | None = None,
                 station: str = "") -> Operator:
    """Check a password. A failure is counted and committed before the error is raised; after
    ``lockout_attempts`` failures the operator is locked for ``lockout_minutes``."""
    cfg = security_settings(security)
    row = uow.session.scalar(select(OperatorRow).where(OperatorRow.login == login))
    if row is None or not row.active:
        _hasher.hash("x" * 8)  # same cost whether or not the login exists
        raise AuthenticationError("wrong operator name or password")
    now = datetime.now(UTC)
    if row.locked_until is not None and row.locked_until > now:
        raise OperatorLocked(row.login, row.locked_until)
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        _count_failure(uow, row, cfg, now, station)
        raise AuthenticationError("wrong operator name or password") from None
    if row.failed_attempts or row.locked_until is not None:
        row.failed_attempts, row.locked_until = 0, None
        uow.commit()
    return Operator(row.login, row.full_name, row.role, bool(row.must_change_password))


def _count_failure(uow, row: OperatorRow, cfg: dict, now: datetime, station: str) -> None:
    s = uow.session
    count = s.execute(update(OperatorRow).where(OperatorRow.id == row.id)
                      .values(failed_attempts=OperatorRow.failed_attempts + 1)
                      .returning(OperatorRow.failed_attempts)).scalar_one()
    record_event(uow, row.login, "login_failed", station=station, detail=f"attempt {count}")
    limit = int(cfg["lockout_attempts"])
    if limit > 0 and count >= limit:
        until = now + timedelta(minutes=float(cfg["lockout_minutes"]))
        s.execute(update(OperatorRow).where(OperatorRow.id == row.id)
                  .values(failed_attempts=0, locked_until=until))
        record_event(uow, row.login, "locked", station=station,
                     detail=f"{count} wrong passwords; locked until {until.isoformat()}")
        uow.commit()
        raise OperatorLocked(row.login, until)
    uow.commit()
