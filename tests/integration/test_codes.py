"""Code tables: customer categories, the region hierarchy, meter models, manufacturers and
payment methods (both backends)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from dbmis_core.domain import Customer, Meter
from dbmis_core.errors import BusinessRuleError, NotFound, PermissionDenied, ValidationError
from dbmis_core.services import audit, codes, customers, registry
from dbmis_core.services.auth import Operator

CLERK = Operator("clerk", "Demo Clerk", "clerk")
TECH = Operator("tom", "Tom Technician", "technician")


def codes_of(app, op, kind, **kw):
    return [e.code for e in codes.list_entries(app, op, kind, **kw)]


def test_added_category_is_usable_for_customers_and_built_ins_keep_working(demo, admin):
    assert codes_of(demo, admin, "category") == ["residential", "commercial", "industrial",
                                                 "agricultural"]
    with demo.uow() as uow, pytest.raises(ValidationError, match="unknown category "
                                                                 "'street_lights'"):
        registry.add_customer(uow, admin, Customer("200001", "Town lights",
                                                   category="street_lights"))
    e = codes.add(demo, admin, "category", "Street_Lights", "Street lighting")
    assert (e.code, e.name, e.builtin) == ("street_lights", "Street lighting", False)
    with demo.uow() as uow:
        c = registry.add_customer(uow, admin, Customer("200001", "Town lights",
                                                       category="street_lights"))
        uow.commit()
    assert c.category.value == "street_lights"
    customers.change_customer(demo, admin, "100001", category="street_lights")
    with demo.uow() as uow:
        assert registry.customer_from_row(
            registry.get_customer_row(uow, "100001")).category == "street_lights"
    codes.set_active(demo, admin, "category", "street_lights", False)
    with pytest.raises(ValidationError, match="unknown category"):
        customers.change_customer(demo, admin, "100002", category="street_lights")
    with pytest.raises(BusinessRuleError, match="built-in"):
        codes.set_active(demo, admin, "category", "residential", False)
    with pytest.raises(ValidationError, match="built-in"):
        codes.add(demo, admin, "category", "commercial", "Shops")
    with pytest.raises(ValidationError, match="lower-case letters"):
        codes.add(demo, admin, "category", "bad category!", "x")


def test_region_hierarchy_rules(demo, admin):
    with pytest.raises(ValidationError, match="parent must be a region"):
        codes.add(demo, admin, "line", "R3-L1", "Line", parent="R1-L1")
    with pytest.raises(ValidationError, match="parent must be a line"):
        codes.add(demo, admin, "district", "R1-T9", "District", parent="R1")
    with pytest.raises(ValidationError, match="a region has no parent"):
        codes.add(demo, admin, "region", "R3", "East", parent="R1")
    codes.add(demo, admin, "region", "R3", "East region")
    codes.add(demo, admin, "line", "R3-L1", "Line East-1", parent="R3")
    moved = codes.change(demo, admin, "district", "R1-L1-T2", parent="R3-L1", name="Oak Lane TD")
    assert (moved.parent, moved.name) == ("R3-L1", "Oak Lane TD")
    with pytest.raises(ValidationError, match="is a district, not a line"):
        codes.change(demo, admin, "line", "R1-L1-T1", name="x")
    with pytest.raises(BusinessRuleError, match="still has 1 active entries"):
        codes.set_active(demo, admin, "line", "R3-L1", False)
    codes.set_active(demo, admin, "district", "R1-L1-T2", False)
    codes.set_active(demo, admin, "line", "R3-L1", False)
    with pytest.raises(BusinessRuleError, match="line R3-L1 is deactivated"):
        codes.set_active(demo, admin, "district", "R1-L1-T2", True)
    with pytest.raises(BusinessRuleError, match="is deactivated"):
        codes.add(demo, admin, "district", "R3-T1", "New TD", parent="R3-L1")
    with demo.uow() as uow, pytest.raises(ValidationError, match="R1-L1-T2 is deactivated"):
        registry.add_customer(uow, admin, Customer("200002", "New", district_code="R1-L1-T2"))
    districts = {e.code: e.active for e in codes.list_entries(demo, admin, "district")}
    assert districts == {"R1-L1-T1": True, "R1-L1-T2": False, "R2-L1-T1": True}
    assert codes_of(demo, admin, "district", active_only=True) == ["R1-L1-T1", "R2-L1-T1"]


def test_models_and_manufacturers(demo, admin):
    codes.add(demo, TECH, "manufacturer", "HX", "Holley Meters", country="CN")
    with pytest.raises(ValidationError, match="unknown manufacturer 'ZZ'"):
        codes.add(demo, TECH, "model", "DDSY-2P", constant="1000", phases="1", rated_amps="60",
                  manufacturer="ZZ")
    with pytest.raises(ValidationError, match="1 or 3 phases"):
        codes.add(demo, TECH, "model", "DDSY-2P", constant="1000", phases="2", rated_amps="60")
    m = codes.add(demo, TECH, "model", "DDSY-2P", constant="1000", phases="1", rated_amps="60",
                  manufacturer="HX")
    assert m.details["manufacturer"] == "HX" and m.details["constant"] == 1000
    with demo.uow() as uow:
        registry.add_meter(uow, admin, Meter("000030000001", "DDSY-2P"))
        uow.commit()
    with pytest.raises(BusinessRuleError, match="constant cannot change"):
        codes.change(demo, TECH, "model", "DDSY-2P", constant="2000")
    changed = codes.change(demo, TECH, "model", "DDSY-2P", rated_amps="80")
    assert changed.details["rated_amps"] == Decimal("80.00")
    codes.set_active(demo, TECH, "manufacturer", "HX", False)
    with pytest.raises(ValidationError, match="unknown manufacturer 'HX'"):
        codes.change(demo, TECH, "model", "DDSY-2P", manufacturer="HX")


def test_payment_methods_and_permissions(demo, admin):
    codes.add(demo, admin, "payment", "cash", "Cash")
    codes.add(demo, admin, "payment", "card", "Bank card")
    codes.change(demo, admin, "payment", "card", name="Bank card (POS)")
    codes.set_active(demo, admin, "payment", "cash", False)
    entries = {e.code: (e.name, e.active) for e in codes.list_entries(demo, CLERK, "payment")}
    assert entries == {"card": ("Bank card (POS)", True), "cash": ("Cash", False)}
    with pytest.raises(ValidationError, match="already exists"):
        codes.add(demo, admin, "payment", "card", "Again")
    with pytest.raises(PermissionDenied):
        codes.add(demo, CLERK, "payment", "transfer", "Transfer")
    with pytest.raises(PermissionDenied):
        codes.add(demo, TECH, "region", "R9", "Nine")
    with pytest.raises(NotFound):
        codes.change(demo, admin, "payment", "cheque", name="x")
    with pytest.raises(ValidationError, match="unknown code table"):
        codes.list_entries(demo, admin, "colour")
    kinds = [(r.kind, r.subject) for r in audit.search(demo, admin) if r.kind.startswith("code.")]
    assert ("code.add", "payment:cash") in kinds and ("code.change", "payment:card") in kinds
