"""Personnel records: staff such as inspectors and fitters, who need not be operators.

A record may name the operator login the person uses; work orders and reports can then show a
person's name and phone for an operator, and inspectors without a login can still be assigned.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import attrs
from sqlalchemy import select

from ..errors import NotFound, ValidationError
from ..storage.models import OperatorRow, PersonnelRow
from .auth import Operator, Perm

EMPLOYEE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,23}$")
PHONE_RE = re.compile(r"^[0-9+() -]{0,32}$")


@attrs.frozen
class Person:
    employee_no: str
    name: str
    title: str
    phone: str
    operator_login: str | None
    active: bool


def _person(row: PersonnelRow) -> Person:
    return Person(row.employee_no, row.name, row.title, row.phone, row.operator_login,
                  bool(row.active))


def _clean(uow, fields: dict, current: PersonnelRow | None = None) -> dict:
    out = {}
    if "name" in fields and fields["name"] is not None:
        name = str(fields["name"]).strip()
        if not name or len(name) > 120:
            raise ValidationError("a person's name must be 1 to 120 characters")
        out["name"] = name
    if "title" in fields and fields["title"] is not None:
        title = str(fields["title"]).strip()
        if len(title) > 80:
            raise ValidationError("title is longer than 80 characters")
        out["title"] = title
    if "phone" in fields and fields["phone"] is not None:
        phone = str(fields["phone"]).strip()
        if not PHONE_RE.match(phone):
            raise ValidationError(f"phone {phone!r} may hold digits, spaces, + ( ) - only "
                                  "(32 at most)")
        out["phone"] = phone
    if "operator_login" in fields and fields["operator_login"] is not None:
        login = str(fields["operator_login"]).strip() or None
        if login is not None:
            if uow.session.scalar(select(OperatorRow.id).where(OperatorRow.login == login)) is None:
                raise ValidationError(f"no operator with login {login!r}")
            other = uow.session.scalar(select(PersonnelRow).where(
                PersonnelRow.operator_login == login))
            if other is not None and other is not current:
                raise ValidationError(f"operator {login} is already linked to "
                                      f"{other.employee_no} ({other.name})")
        out["operator_login"] = login
    return out


def list_people(app, op: Operator, active_only: bool = False) -> list[Person]:
    op.require(Perm.VIEW)
    q = select(PersonnelRow).order_by(PersonnelRow.employee_no)
    if active_only:
        q = q.where(PersonnelRow.active.is_(True))
    with app.uow(durable=False) as uow:
        return [_person(r) for r in uow.session.scalars(q)]


def add(app, op: Operator, employee_no: str, name: str, title: str = "", phone: str = "",
        operator_login: str | None = None) -> Person:
    from . import audit

    op.require(Perm.MANAGE_SETTINGS)
    no = (employee_no or "").strip()
    if not EMPLOYEE_RE.match(no):
        raise ValidationError(f"employee number {employee_no!r} must be 1 to 24 letters, digits, "
                              "- or _")
    with app.uow() as uow:
        s = uow.session
        if s.scalar(select(PersonnelRow.id).where(PersonnelRow.employee_no == no)):
            raise ValidationError(f"employee number {no} is already used")
        fields = _clean(uow, {"name": name, "title": title or "", "phone": phone or "",
                              "operator_login": operator_login or ""})
        row = PersonnelRow(employee_no=no, active=True, **fields)
        s.add(row)
        s.flush()
        person = _person(row)
        audit.record(uow, op, "personnel.add", no, {"after": attrs.asdict(person)},
                     station=app.config.station_code)
        uow.commit()
    return person


def change(app, op: Operator, employee_no: str, *, name: str | None = None,
           title: str | None = None, phone: str | None = None,
           operator_login: str | None = None, active: bool | None = None) -> Person:
    """Change a record; ``operator_login=""`` unlinks the login, ``active=False`` marks a person
    who has left (records are kept)."""
    from . import audit

    op.require(Perm.MANAGE_SETTINGS)
    with app.uow() as uow:
        row = uow.session.scalar(select(PersonnelRow).where(
            PersonnelRow.employee_no == (employee_no or "").strip()))
        if row is None:
            raise NotFound(f"no person with employee number {employee_no}")
        before = _person(row)
        fields = _clean(uow, {"name": name, "title": title, "phone": phone,
                              "operator_login": operator_login}, row)
        if active is not None:
            fields["active"] = bool(active)
        for k, v in fields.items():
            setattr(row, k, v)
        after = _person(row)
        if after == before:
            raise ValidationError("nothing changed: the values are the ones already recorded")
        row.updated_at = datetime.now(UTC)
        audit.record(uow, op, "personnel.change", row.employee_no,
                     {"before": attrs.asdict(before), "after": attrs.asdict(after)},
                     station=app.config.station_code)
        uow.commit()
    return after
