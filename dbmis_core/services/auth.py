"""Operators, roles and permissions; passwords hashed with argon2id."""

from __future__ import annotations

import enum

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select

from ..errors import AuthenticationError, PermissionDenied, ValidationError
from ..storage.models import OperatorRow

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
    BACKUP = "backup"            # back up, verify, restore, archive (administrator, supervisor)
    MANAGE_KEYS = "manage_keys"  # rotate and export the card master secret (administrator)


ROLES: dict[str, frozenset[Perm]] = {
    "administrator": frozenset(Perm),
    "supervisor": frozenset(set(Perm) - {Perm.MANAGE_OPERATORS, Perm.MANAGE_KEYS}),
    "clerk": frozenset({Perm.VEND, Perm.READ_CARD, Perm.ISSUE_CARD, Perm.MANAGE_CUSTOMERS,
                        Perm.RECONCILE, Perm.VIEW, Perm.MANAGE_APPLICATIONS, Perm.REISSUE_CARD,
                        Perm.CLOSE_DAY}),
    "technician": frozenset({Perm.READ_CARD, Perm.MANAGE_METERS, Perm.VIEW,
                             Perm.WRITE_SERVICE_CARDS}),
    "auditor": frozenset({Perm.VIEW, Perm.READ_CARD}),
}


@attrs.frozen
class Operator:
    """The authenticated operator a service call runs as."""

    login: str
    full_name: str
    role: str

    def can(self, perm: Perm) -> bool:
        return perm in ROLES.get(self.role, frozenset())

    def require(self, perm: Perm) -> None:
        if not self.can(perm):
            raise PermissionDenied(f"operator {self.login} ({self.role}) may not {perm.value}")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValidationError("a password needs at least 8 characters")
    return _hasher.hash(password)


def create_operator(uow, login: str, full_name: str, password: str, role: str) -> Operator:
    login = (login or "").strip()
    if not login or not login.isidentifier():
        raise ValidationError(f"operator login {login!r} must be letters, digits or _")
    if role not in ROLES:
        raise ValidationError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if uow.session.scalar(select(OperatorRow).where(OperatorRow.login == login)):
        raise ValidationError(f"operator {login} already exists")
    uow.session.add(OperatorRow(login=login, full_name=full_name or login,
                                password_hash=hash_password(password), role=role))
    return Operator(login, full_name or login, role)


def authenticate(uow, login: str, password: str) -> Operator:
    row = uow.session.scalar(select(OperatorRow).where(OperatorRow.login == login))
    if row is None or not row.active:
        _hasher.hash("x" * 8)  # same cost whether or not the login exists
        raise AuthenticationError("wrong operator name or password")
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("wrong operator name or password") from None
    return Operator(row.login, row.full_name, row.role)
