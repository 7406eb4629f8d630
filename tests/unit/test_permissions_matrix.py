"""The permission matrix: every permission for every role through ``Operator.require`` (what every
service calls first), against the table in docs/user-guide/operators.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbmis_core.errors import PermissionDenied
from dbmis_core.services.auth import ROLES, Operator, PasswordChangeRequired, Perm

DOC = Path(__file__).resolve().parents[2] / "docs" / "user-guide" / "operators.md"


def documented() -> tuple[list[str], dict[str, dict[str, bool]]]:
    """(roles in column order, {permission: {role: allowed}}) from the doc's table."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| Permission |"))
    roles = [c.strip() for c in lines[header].strip("|").split("|")[1:]]
    table = {}
    for line in lines[header + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        perm = re.fullmatch(r"`([a-z_]+)`", cells[0]).group(1)
        assert set(cells[1:]) <= {"yes", "-"}, line
        table[perm] = {role: cell == "yes" for role, cell in zip(roles, cells[1:], strict=True)}
    return roles, table


ROLES_IN_DOC, TABLE = documented()


def test_the_doc_lists_every_role_and_every_permission():
    assert ROLES_IN_DOC == list(ROLES)
    assert set(TABLE) == {p.value for p in Perm}
    for required in ("administrator", "supervisor", "clerk", "technician", "auditor"):
        assert required in ROLES


@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("perm", list(Perm), ids=lambda p: p.value)
def test_require_follows_the_documented_matrix(role, perm):
    op = Operator("someone", "Some One", role)
    if TABLE[perm.value][role]:
        op.require(perm)
        assert op.can(perm)
    else:
        with pytest.raises(PermissionDenied, match=f"may not {perm.value}"):
            op.require(perm)
        assert not op.can(perm)


@pytest.mark.parametrize("perm", list(Perm), ids=lambda p: p.value)
def test_a_forced_password_change_blocks_every_permission(perm):
    with pytest.raises(PasswordChangeRequired, match="must change the password"):
        Operator("admin", "Admin", "administrator", must_change_password=True).require(perm)


def test_the_auditor_is_read_only():
    assert ROLES["auditor"] == {Perm.VIEW, Perm.READ_CARD, Perm.VIEW_REPORTS, Perm.VIEW_AUDIT}
    assert ROLES["administrator"] == set(Perm)
