"""The report plugin of docs/integrator-guide.md section 6, taken from the guide's own code,
registered like a plugin and run through the report service on the fixed data set."""

from __future__ import annotations

import importlib.util
import io
import re
from decimal import Decimal as D
from pathlib import Path

from openpyxl import load_workbook

from dbmis_core.services import reports
from dbmis_core.testing.reports import seed

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "integrator-guide.md"


def test_the_guides_report_plugin_runs_and_exports(app, admin, tmp_path):
    text = GUIDE.read_text()
    section = text[text.index("## 6. Writing a report plugin"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    (tmp_path / "category_report.py").write_text(code)
    spec = importlib.util.spec_from_file_location("category_report",
                                                  tmp_path / "category_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    app.pm.register(module, "category_report")
    assert "sales-by-category" in app.pm.reports()
    seed(app)
    r = reports.run(app, admin, "sales-by-category", month_from="2025-03")
    # March 2025: residential 100 + 20 + 30, commercial 150, industrial 250 (hand sums)
    assert [(x["category"], x["sales"], x["amount"]) for x in r.rows] == [
        ("commercial", 1, D("150.00")), ("industrial", 1, D("250.00")),
        ("residential", 3, D("150.00"))]
    assert r.totals["amount"] == D("550.00")
    ws = load_workbook(io.BytesIO(reports.to_xlsx(r))).active
    assert ws.cell(4, 3).value == 150 and ws.cell(4, 3).data_type == "n"
    assert reports.to_pdf(r).startswith(b"%PDF")
