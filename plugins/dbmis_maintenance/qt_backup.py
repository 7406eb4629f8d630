"""The "Backup and restore" page: back up now, the list of backups, verify, restore (after typing
RESTORE), and archive clean-up. All work runs through ``ctx.run`` off the GUI thread; the services
decide what is allowed."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dbmis_core.services import archive, backup
from dbmis_core.types import ERROR_STYLE

COLUMNS = ("Taken (UTC)", "Kind", "File", "Size (MB)", "Rows", "Card key")


class BackupPage(QWidget):
    def __init__(self, ctx) -> None:
        super().__init__(objectName="page-backup")
        self.ctx = ctx
        self._jobs = 0
        self.backup_button = QPushButton("Back up now", objectName="backup-now")
        self.verify_button = QPushButton("Verify", objectName="verify")
        self.restore_button = QPushButton("Restore...", objectName="restore")
        self.refresh_button = QPushButton("Refresh", objectName="refresh")
        self.table = QTableWidget(0, len(COLUMNS), objectName="backups")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.years = QSpinBox(objectName="archive-years", minimum=1, maximum=50)
        self.years.setValue(int(ctx.app.config.section("backup").get("archive_after_years", 5)))
        self.archive_button = QPushButton("Move to archive", objectName="archive-run")
        self.unarchive_button = QPushButton("Move back from archive", objectName="archive-restore")
        self.result = QPlainTextEdit(objectName="result", readOnly=True)
        self.result.setMaximumHeight(150)
        self.error_label = QLabel(objectName="error", wordWrap=True)
        self.error_label.setStyleSheet(ERROR_STYLE)
        self.folder_label = QLabel(f"Backup folder: {backup.folder(ctx.app)}", objectName="folder")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        for b in (self.backup_button, self.verify_button, self.restore_button, self.refresh_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        arch = QGroupBox("Clean-up: move closed days older than N years to the archive database")
        row = QHBoxLayout(arch)
        row.addWidget(QLabel("Years:"))
        row.addWidget(self.years)
        row.addWidget(self.archive_button)
        row.addWidget(self.unarchive_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<h2>Backup and restore</h2>"))
        layout.addWidget(self.folder_label)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 1)
        layout.addWidget(arch)
        layout.addWidget(self.error_label)
        layout.addWidget(self.result)

        self.backup_button.clicked.connect(self.back_up)
        self.verify_button.clicked.connect(self.verify)
        self.restore_button.clicked.connect(self.restore)
        self.refresh_button.clicked.connect(self.refresh)
        self.archive_button.clicked.connect(self.archive)
        self.unarchive_button.clicked.connect(self.unarchive)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.refresh()

    # -- state ---------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self._jobs > 0

    def selected_file(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        return self.table.item(rows[0].row(), 2).text() if rows else None

    def _update_buttons(self) -> None:
        idle, chosen = not self.busy, self.selected_file() is not None
        for b in (self.backup_button, self.refresh_button, self.archive_button,
                  self.unarchive_button):
            b.setEnabled(idle)
        self.verify_button.setEnabled(idle and chosen)
        self.restore_button.setEnabled(idle and chosen)

    def _run(self, fn, on_done) -> None:
        self._jobs += 1
        self.error_label.clear()
        self._update_buttons()
        self.ctx.run(fn, lambda r: self._finished(on_done, r),
                     lambda msg: self._finished(self.error_label.setText, msg))

    def _finished(self, callback, value) -> None:
        self._jobs -= 1
        self._update_buttons()
        callback(value)

    # -- actions -------------------------------------------------------------------------------
    def refresh(self) -> None:
        app, op = self.ctx.app, self.ctx.operator
        self._run(lambda: backup.list_backups(app, op), self._show)

    def _show(self, found) -> None:
        self.table.setRowCount(len(found))
        for i, b in enumerate(found):
            values = (f"{b.created_at:%Y-%m-%d %H:%M:%S}", b.kind, b.file, f"{b.size / 1e6:.2f}",
                      str(sum(b.counts.values())), "encrypted" if b.key_included else "not included")
            for j, v in enumerate(values):
                self.table.setItem(i, j, QTableWidgetItem(v))
        self._update_buttons()

    def back_up(self) -> None:
        app, op = self.ctx.app, self.ctx.operator

        def done(b):
            self.result.setPlainText(f"Backup {b.file} written ({b.size / 1e6:.2f} MB, "
                                     f"{sum(b.counts.values())} rows).")
            self.ctx.status(f"backup {b.file} written")
            self.refresh()

        self._run(lambda: backup.take(app, op), done)

    def verify(self) -> None:
        name = self.selected_file()
        if name is None:
            return
        app, op = self.ctx.app, self.ctx.operator

        def done(v):
            lines = [f"{v.file}: {'OK' if v.ok else 'FAILED'}"] + [f"  checked: {c}" for c in v.checks]
            lines += [f"  PROBLEM: {p}" for p in v.problems]
            self.result.setPlainText("\n".join(lines))
            if not v.ok:
                self.error_label.setText(f"backup {v.file} failed verification")

        self._run(lambda: backup.verify(app, op, name), done)

    def confirm_restore(self, name: str) -> str | None:
        """Ask the operator to type RESTORE; returns what was typed, or None if cancelled."""
        text, ok = QInputDialog.getText(
            self, "Restore backup",
            f"This replaces the whole database with {name}.\nA safety backup of the current "
            f"database is taken first.\n\nType {backup.CONFIRM_WORD} to go on:",
            QLineEdit.EchoMode.Normal, "")
        return text if ok else None

    def restore(self) -> None:
        name = self.selected_file()
        if name is None:
            return
        typed = self.confirm_restore(name)
        if typed is None or typed.strip() != backup.CONFIRM_WORD:
            self.error_label.setText("restore not confirmed; nothing was changed")
            return
        app, op = self.ctx.app, self.ctx.operator

        def done(r):
            self.result.setPlainText(f"Database restored from {r.restored}.\n"
                                     f"The state before the restore is in {r.safety_backup}.")
            self.refresh()

        self._run(lambda: backup.restore(app, op, name, confirm=True), done)

    def archive(self) -> None:
        app, op, years = self.ctx.app, self.ctx.operator, self.years.value()

        def done(r):
            moved = ", ".join(f"{n} {t}" for t, n in r.moved.items() if n) or "nothing"
            kept = (f"\nKept {len(r.kept_closings)} old closings that newer rows refer to."
                    if r.kept_closings else "")
            self.result.setPlainText(f"Archived closed days before {r.cutoff}: {moved}.{kept}")

        self._run(lambda: archive.run(app, op, years), done)

    def unarchive(self) -> None:
        app, op = self.ctx.app, self.ctx.operator

        def done(r):
            moved = ", ".join(f"{n} {t}" for t, n in r.moved.items() if n) or "nothing"
            self.result.setPlainText(f"Moved back from the archive: {moved}.")

        self._run(lambda: archive.unarchive(app, op), done)
