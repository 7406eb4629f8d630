"""A pocket calculator for the clerk: Decimal arithmetic (no binary floats), memory, keyboard keys,
copy, and "use in amount field" which hands the result to the page's money field."""

from __future__ import annotations

from decimal import Decimal, DivisionByZero, InvalidOperation

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QGuiApplication, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QDialog,
    QGridLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

PLACES = Decimal("1E-10")  # results keep at most ten decimals (1/3 -> 0.3333333333)


def fmt(value: Decimal) -> str:
    if value.as_tuple().exponent < -10:
        value = value.quantize(PLACES)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class CalcEngine:
    """Immediate-execution calculator as on a desk: 2 + 3 * 4 = 20, one pending operator."""

    OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
           "*": lambda a, b: a * b, "/": lambda a, b: a / b}

    def __init__(self) -> None:
        self.memory = Decimal(0)
        self.clear()

    def clear(self) -> None:
        self.entry, self.acc, self.pending, self.fresh, self.error = "0", None, None, True, False

    def clear_entry(self) -> None:
        self.entry, self.fresh, self.error = "0", True, False

    @property
    def display(self) -> str:
        return "Error" if self.error else self.entry

    def value(self) -> Decimal:
        return Decimal(self.entry)

    def digit(self, d: str) -> None:
        if self.error:
            self.clear()
        if self.fresh:
            self.entry, self.fresh = "0", False
        self.entry = d if self.entry == "0" else self.entry + d
        if self.entry == "-0":
            self.entry = "-" + d

    def point(self) -> None:
        if self.error:
            self.clear()
        if self.fresh:
            self.entry, self.fresh = "0", False
        if "." not in self.entry:
            self.entry += "."

    def backspace(self) -> None:
        if not self.fresh and not self.error:
            self.entry = self.entry[:-1] or "0"
            if self.entry == "-":
                self.entry = "0"

    def negate(self) -> None:
        if not self.error and self.entry != "0":
            self.entry = self.entry[1:] if self.entry.startswith("-") else "-" + self.entry

    def _apply(self) -> bool:
        try:
            result = self.OPS[self.pending](self.acc, self.value())
        except (DivisionByZero, InvalidOperation, ZeroDivisionError):
            self.error = True
            return False
        self.entry = fmt(result)
        return True

    def operator(self, op: str) -> None:
        if self.error:
            return
        if self.pending is not None and not self.fresh:
            if not self._apply():
                return
        self.acc, self.pending, self.fresh = self.value(), op, True

    def equals(self) -> None:
        if self.error or self.pending is None:
            return
        if self._apply():
            self.acc, self.pending, self.fresh = None, None, True

    def memory_add(self, sign: int = 1) -> None:
        if not self.error:
            self.memory += sign * self.value()
            self.fresh = True

    def memory_recall(self) -> None:
        self.entry, self.fresh, self.error = fmt(self.memory), True, False

    def memory_clear(self) -> None:
        self.memory = Decimal(0)


class CalculatorDialog(QDialog):
    """``use_in_money_field`` is emitted with the result text; the main window puts it into the
    current page's money field and says whether it could."""

    use_requested = pyqtSignal(str)

    BUTTONS = [["MC", "MR", "M+", "M-"],
               ["C", "CE", "<-", "/"],
               ["7", "8", "9", "*"],
               ["4", "5", "6", "-"],
               ["1", "2", "3", "+"],
               ["+/-", "0", ".", "="]]

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calculator")
        self.setObjectName("calculator")
        self.engine = CalcEngine()
        self.display = QLineEdit(objectName="calc-display", readOnly=True)
        self.display.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.display.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        font = self.display.font()
        font.setPointSize(font.pointSize() + 6)
        self.display.setFont(font)
        self.memory_label = QLabel(objectName="calc-memory")
        self.message = QLabel(objectName="calc-message", wordWrap=True)
        grid = QGridLayout()
        self.buttons: dict[str, QPushButton] = {}
        for r, row in enumerate(self.BUTTONS):
            for c, key in enumerate(row):
                b = QPushButton(key, objectName=f"calc-{key}")
                b.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Enter must mean "=", not the last button
                b.clicked.connect(lambda _c=False, k=key: self.press(k))
                grid.addWidget(b, r, c)
                self.buttons[key] = b
        self.copy_button = QPushButton("&Copy result", objectName="calc-copy")
        self.use_button = QPushButton("&Use in amount field", objectName="calc-use")
        for b in (self.copy_button, self.use_button):
            b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.copy_button.clicked.connect(self.copy_result)
        self.use_button.clicked.connect(lambda: self.use_requested.emit(self.result_text()))
        self.buttons["M+"].setToolTip("Add to memory (Ctrl+P)")
        self.buttons["M-"].setToolTip("Subtract from memory (Ctrl+M)")
        self.buttons["MR"].setToolTip("Recall memory (Ctrl+R)")
        self.buttons["MC"].setToolTip("Clear memory (Ctrl+E)")
        for seq, key in (("Ctrl+P", "M+"), ("Ctrl+M", "M-"), ("Ctrl+R", "MR"), ("Ctrl+E", "MC")):
            QShortcut(QKeySequence(seq), self, activated=lambda k=key: self.press(k))
        QShortcut(QKeySequence.StandardKey.Copy, self, activated=self.copy_result)
        QShortcut(QKeySequence("Ctrl+U"), self, activated=self.use_button.click)
        layout = QVBoxLayout(self)
        layout.addWidget(self.display)
        layout.addWidget(self.memory_label)
        layout.addLayout(grid)
        layout.addWidget(self.copy_button)
        layout.addWidget(self.use_button)
        layout.addWidget(self.message)
        self.refresh()

    def press(self, key: str) -> None:
        e = self.engine
        self.message.clear()
        if key.isdigit():
            e.digit(key)
        else:
            {".": e.point, "C": e.clear, "CE": e.clear_entry, "<-": e.backspace, "+/-": e.negate,
             "=": e.equals, "M+": e.memory_add, "M-": lambda: e.memory_add(-1),
             "MR": e.memory_recall, "MC": e.memory_clear}.get(key, lambda: e.operator(key))()
        self.refresh()

    def refresh(self) -> None:
        self.display.setText(self.engine.display)
        self.memory_label.setText(f"M = {fmt(self.engine.memory)}" if self.engine.memory else "")

    def result_text(self) -> str:
        return self.engine.display

    def copy_result(self) -> None:
        QGuiApplication.clipboard().setText(self.result_text())
        self.message.setText("result copied")

    KEYS = {Qt.Key.Key_Plus: "+", Qt.Key.Key_Minus: "-", Qt.Key.Key_Asterisk: "*",
            Qt.Key.Key_Slash: "/", Qt.Key.Key_Equal: "=", Qt.Key.Key_Return: "=",
            Qt.Key.Key_Enter: "=", Qt.Key.Key_Period: ".", Qt.Key.Key_Comma: ".",
            Qt.Key.Key_Backspace: "<-", Qt.Key.Key_Delete: "CE", Qt.Key.Key_Escape: "C"}

    def keyPressEvent(self, event) -> None:
        text = event.text()
        if text and text.isdigit() and len(text) == 1:
            self.press(text)
        elif event.key() in self.KEYS and not event.modifiers() & (
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.press(self.KEYS[event.key()])
        elif text == "x":
            self.press("*")
        else:
            super().keyPressEvent(event)
