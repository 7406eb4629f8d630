"""The "User management" pages driven as a supervisor would: a customer's consumption with the
interactive chart, the ranking filtered by region with a work order created from it, and the outcome
recorded on the work-order page. Offscreen on both backends; screenshots go to the artifacts
folder."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from pathlib import Path

from PyQt6.QtCore import QPoint, Qt

from dbmis_core.services import consumption, workorders
from dbmis_core.testing.consumption import seed_history
from dbmis_qt.window import MainWindow

WAIT_MS = 30_000


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def open_page(qtbot, window, name):
    window.page_actions[name].trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == f"page-{name}"
    return page


def test_consumption_ranking_and_work_orders_pages(demo, admin, qtbot, artifacts_dir):
    seed_history(demo, admin)
    artifacts = Path(artifacts_dir)
    window = MainWindow(demo, admin)
    qtbot.addWidget(window)
    window.resize(1400, 800)
    window.show()
    menu = window.module_menus["User management"].actions()
    assert {window.page_actions[n] for n in ("consumption", "suspicion-ranking",
                                             "work-orders")} <= set(menu)

    # -- consumption per customer: compute, table, findings, chart with hover ----------------------
    page = open_page(qtbot, window, "consumption")
    qtbot.keyClicks(page.account_edit, "100003")
    click(qtbot, page.compute_button)
    qtbot.waitUntil(lambda: page.table.rowCount() == 25, timeout=WAIT_MS)
    assert page.table.item(24, 4).text() == "partial"
    assert "Persistent abnormal drop" in page.findings.text()
    assert "use fell to" in page.findings.text()
    ax = page.chart.figure.axes[0]
    assert ax.get_title() == "Monthly consumption of 100003"
    assert len(ax.patches) == 12  # one bar per month of the last year
    assert page.chart.toolbar is not None and page.chart.toolbar.actions()
    # hover over the sixth bar: the label shows that month's values
    page.chart.canvas.draw()
    x, y = ax.transData.transform((5, ax.get_ylim()[1] / 2))
    height = page.chart.canvas.figure.bbox.height
    ratio = page.chart.canvas.device_pixel_ratio or 1
    qtbot.mouseMove(page.chart.canvas, QPoint(2, 2))  # Qt drops a move to where it already is
    qtbot.mouseMove(page.chart.canvas, QPoint(int(x / ratio), int((height - y) / ratio)))
    qtbot.waitUntil(lambda: page.chart.hover.text().startswith("2026-04"), timeout=WAIT_MS)
    assert "last year:" in page.chart.hover.text()
    assert window.grab().save(str(artifacts / "qt-consumption.png"))
    assert (artifacts / "qt-consumption.png").stat().st_size > 20_000

    page.view_combo.setCurrentIndex(2)
    click(qtbot, page.show_button)
    qtbot.waitUntil(lambda: page.shown == "line", timeout=WAIT_MS)
    assert page.chart.figure.axes[0].get_title() == "Monthly consumption per line"

    # -- ranking: region filter, then a work order for the selected customer -----------------------
    ranking = open_page(qtbot, window, "suspicion-ranking")
    qtbot.keyClicks(ranking.region_edit, "R1")
    click(qtbot, ranking.rank_button)
    qtbot.waitUntil(lambda: ranking.table.rowCount() == 2, timeout=WAIT_MS)
    assert [ranking.table.item(i, 1).text() for i in range(2)] == ["100003", "100004"]
    assert "use fell to" in ranking.table.item(0, 6).text()
    ranking.region_edit.clear()
    qtbot.keyClicks(ranking.region_edit, "NOPE")
    click(qtbot, ranking.rank_button)
    qtbot.waitUntil(lambda: "no region" in ranking.message.text(), timeout=WAIT_MS)
    ranking.region_edit.clear()
    click(qtbot, ranking.rank_button)
    qtbot.waitUntil(lambda: ranking.table.rowCount() == 4, timeout=WAIT_MS)
    assert window.grab().save(str(artifacts / "qt-ranking.png"))
    assert (artifacts / "qt-ranking.png").stat().st_size > 20_000
    ranking.table.selectRow(1)
    click(qtbot, ranking.order_button)
    qtbot.waitUntil(lambda: len(workorders.list_orders(demo, admin)) == 1, timeout=WAIT_MS)
    [order] = workorders.list_orders(demo, admin)
    assert order.account_no == "100003" and order.origin == "ranking" and order.reasons

    # -- work orders: assign and record the outcome --------------------------------------------
    orders = open_page(qtbot, window, "work-orders")
    click(qtbot, orders.refresh_button)
    qtbot.waitUntil(lambda: orders.table.rowCount() == 1, timeout=WAIT_MS)
    orders.table.selectRow(0)
    qtbot.keyClicks(orders.inspector_edit, "clerk")
    click(qtbot, orders.assign_button)
    qtbot.waitUntil(lambda: orders.table.item(0, 5).text() == "assigned", timeout=WAIT_MS)
    orders.table.selectRow(0)
    orders.outcome_combo.setCurrentText("fault")
    qtbot.keyClicks(orders.notes_edit, "register jammed")
    click(qtbot, orders.outcome_button)
    qtbot.waitUntil(lambda: orders.table.item(0, 7).text() == "fault", timeout=WAIT_MS)
    assert window.grab().save(str(artifacts / "qt-workorders.png"))
    [label] = workorders.labels(demo, admin)
    assert (label.account_no, label.outcome) == ("100003", "fault")
    assert consumption.rank(demo, admin, top=1)[0].account_no == "100006"
