"""The Qt workstation driven as a clerk would: log in, open the sale page, sell, check the database.

Runs offscreen on both backends and leaves screenshots in the artifacts folder for a reviewer.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from PyQt6.QtCore import Qt

from dbmis_core.app import Application
from dbmis_core.config import Config
from dbmis_core.services import cards, vending
from dbmis_core.services.auth import create_operator
from dbmis_qt.app import launch
from dbmis_qt.login import LoginDialog
from dbmis_qt.window import MainWindow
from dbmis_sim.meter import MeterSimulator
from dbmis_sim.reader import SimReader, reader_folder

CLERK, CLERK_PW = "clerk", "clerk-demo-1"
METER_NO = "000020240001"
WAIT_MS = 20_000


@pytest.fixture
def issued(demo):
    """The demo utility with a user card for 100001 in the reader; returns (app, clerk, uid)."""
    clerk = demo.login(CLERK, CLERK_PW)
    demo.reader.new_card()
    uid = cards.issue_user_card(demo, clerk, "100001")
    return demo, clerk, uid


def hand(app) -> SimReader:
    """The customer's hand at the simulated reader: another view of the same card slot."""
    return SimReader(reader_folder(app.config.driver_settings("sim")))


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def choose_customer(qtbot, page, text: str, account_no: str) -> None:
    qtbot.keyClicks(page.search_edit, text)
    qtbot.waitUntil(lambda: any(page.results.item(i).text().startswith(account_no)
                                for i in range(page.results.count())), timeout=WAIT_MS)
    [item] = [page.results.item(i) for i in range(page.results.count())
              if page.results.item(i).text().startswith(account_no)]
    qtbot.mouseClick(page.results.viewport(), Qt.MouseButton.LeftButton,
                     pos=page.results.visualItemRect(item).center())
    assert page.account_no == account_no


def open_sale_page(qtbot, app, operator):
    window = MainWindow(app, operator)
    qtbot.addWidget(window)
    window.show()
    window.page_actions["sale"].trigger()
    return window, window.stack.currentWidget()


def assert_screenshot(widget, path: Path) -> None:
    assert widget.grab().save(str(path))
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_clerk_sells_through_the_workstation(issued, qtbot, artifacts_dir, backend, tmp_path):
    app, clerk, uid = issued
    artifacts = Path(artifacts_dir)

    # -- login: one wrong password, then the right one ------------------------------------------
    dialog = launch(app)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.login_edit, CLERK)
    qtbot.keyClicks(dialog.password_edit, "not-the-password")
    click(qtbot, dialog.ok_button)
    assert dialog.error_label.text() == "wrong operator name or password"
    assert dialog.main_window is None and dialog.isVisible()
    assert dialog.password_edit.text() == ""
    assert_screenshot(dialog, artifacts / "qt-login.png")
    qtbot.keyClicks(dialog.password_edit, CLERK_PW)
    click(qtbot, dialog.ok_button)
    window = dialog.main_window
    assert window is not None and not dialog.isVisible()
    qtbot.addWidget(window)
    assert "clerk" in window.operator_label.text()
    assert "S01" in window.station_label.text()
    qtbot.waitUntil(lambda: window.reader_label.text() == "Reader: card present", timeout=WAIT_MS)

    # -- the sale page comes from the plugin, under its module menu ------------------------------
    action = window.page_actions["sale"]
    assert action in window.module_menus["Daily business"].actions()
    action.trigger()
    page = window.stack.currentWidget()
    assert page.objectName() == "page-sale"

    choose_customer(qtbot, page, "1000", "100001")
    assert "Li Wei" in page.customer_label.text()

    click(qtbot, page.read_button)
    assert not page.read_button.isEnabled() and page.busy_bar.isVisible()  # busy while reading
    qtbot.waitUntil(lambda: page.card_labels["uid"].text() == uid, timeout=WAIT_MS)
    assert page.read_button.isEnabled() and not page.busy_bar.isVisible()
    assert page.card_labels["sequence"].text().startswith("0")
    assert page.card_warnings.text() == ""

    qtbot.keyClicks(page.amount_edit, "50.00")
    qtbot.waitUntil(lambda: "89.28 kWh" in page.preview_label.text(), timeout=WAIT_MS)
    assert "0.5600" in page.preview_label.text()

    click(qtbot, page.sell_button)
    qtbot.waitUntil(lambda: page.last_sale is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: page.card_labels["sequence"].text() == "1", timeout=WAIT_MS)
    assert page.error_label.text() == ""
    # the amount is cleared so a second click cannot sell it again
    assert page.amount_edit.text() == "" and page.preview_label.text() == ""
    assert not page.sell_button.isEnabled()

    [sale] = [v for v in vending.sales_of(app, clerk, "100001") if v.state == "completed"]
    assert page.receipt_no_label.text() == f"Receipt {sale.receipt_no}"
    assert sale.receipt_no in page.receipt_view.toPlainText()
    assert sale.sequence == 1 and sale.energy == Decimal("89.28") and sale.amount == Decimal("50.00")
    # the window owns the reader now: the test reads through the same device worker
    assert app.devices.call(cards.read_card, app, clerk).image.vend.sequence == 1
    assert page.card_labels["loaded"].text().startswith("No")

    # -- the customer loads the card, uses 30 kWh, comes back: the page shows the return data -----
    meter = MeterSimulator.provision(tmp_path / "meter.json", METER_NO, app.keys.meter_key(METER_NO))
    with hand(app).connect() as conn:
        assert meter.insert(conn, app.card_format).applied == Decimal("89.28")
    meter.run(10, Decimal("3"))
    with hand(app).connect() as conn:
        meter.insert(conn, app.card_format)
    click(qtbot, page.read_button)
    qtbot.waitUntil(lambda: page.card_labels["consumed"].text() == "30.00 kWh", timeout=WAIT_MS)
    assert page.card_labels["remaining"].text() == "59.28 kWh"
    assert page.card_labels["loaded"].text() == "Yes"
    assert_screenshot(window, artifacts / f"qt-sale-{backend}.png")


@pytest.mark.parametrize("problem", ["three-decimals", "no-card"])
def test_sale_error_is_shown_and_sells_nothing(issued, qtbot, problem):
    app, clerk, _uid = issued
    window, page = open_sale_page(qtbot, app, clerk)
    choose_customer(qtbot, page, "Li", "100001")
    if problem == "three-decimals":
        qtbot.keyClicks(page.amount_edit, "0.001")
        expected = "amount has more than two decimals: 0.001"
        qtbot.waitUntil(lambda: page.preview_label.text() == expected, timeout=WAIT_MS)
    else:
        qtbot.keyClicks(page.amount_edit, "20.00")
        hand(app).eject()
        qtbot.waitUntil(lambda: window.reader_label.text() == "Reader: no card", timeout=WAIT_MS)
        expected = "no card in the reader; insert a card"
    click(qtbot, page.sell_button)
    qtbot.waitUntil(lambda: page.error_label.text() != "", timeout=WAIT_MS)
    assert page.error_label.text() == expected
    assert page.last_sale is None and page.receipt_view.toPlainText() == ""
    assert page.sell_button.isEnabled()
    assert vending.sales_of(app, clerk, "100001") == []


def test_menus_show_only_permitted_pages(demo, qtbot):
    from dbmis_core.services.auth import Perm

    with demo.uow() as uow:
        create_operator(uow, "ann", "Ann Auditor", "auditor-pw-1", "auditor")
        uow.commit()
    pages = demo.pm.qt_pages()
    for login, password in (("ann", "auditor-pw-1"), (CLERK, CLERK_PW)):
        op = demo.login(login, password)
        window = MainWindow(demo, op)
        qtbot.addWidget(window)
        allowed = {p.name for p in pages if p.permission is None or op.can(Perm(p.permission))}
        assert set(window.page_actions) == allowed
        menus = [a.text() for a in window.menuBar().actions()]
        assert menus[0] == "&File" and menus[-1] == "&Help"
        assert set(menus[1:-1]) == {p.menu for p in pages if p.name in allowed}
        if login == "ann":  # reading cards and looking, never selling or changing
            assert "card-tools" in allowed and "sale" not in allowed
            assert not allowed & {"tariffs", "cash-desk", "reissue-card", "reverse-sale", "backup"}
        else:
            assert {"sale", "card-tools"} <= allowed and "tariffs" not in allowed


def test_login_on_an_uninitialised_database_says_run_dbmis_init(tmp_path, qtbot):
    app = Application(Config.from_dict({"database": {"url": f"sqlite:///{tmp_path / 'new.sqlite3'}"}},
                                       home=tmp_path))
    dialog = LoginDialog(app)
    qtbot.addWidget(dialog)
    qtbot.keyClicks(dialog.login_edit, "admin")
    qtbot.keyClicks(dialog.password_edit, "admin-pass-1")
    click(qtbot, dialog.ok_button)
    assert dialog.error_label.text() == "the database is not initialised; run 'dbmis init'"
    assert dialog.operator is None
    app.close()


def test_sales_plugin_loads_without_pyqt6():
    code = ("import sys; sys.modules['PyQt6'] = None\n"
            "from dbmis_core.plugins import DbmisPluginManager\n"
            "pm = DbmisPluginManager(); pm.load_entry_points()\n"
            "assert pm.infos['sales'].status == 'loaded', pm.infos['sales']\n"
            "[page] = [p for p in pm.qt_pages() if p.name == 'sale']\n"
            "print(page.name, page.menu, page.permission)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "sale Daily business vend"


def test_python_dash_m_dbmis_qt_starts():
    out = subprocess.run([sys.executable, "-m", "dbmis_qt", "--help"], capture_output=True,
                         text=True, check=True, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert "DBMIS clerk workstation" in out.stdout
