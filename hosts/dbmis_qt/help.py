"""Online help: the user guide (docs/user-guide/*.md) rendered inside the workstation.

The guide is read from the repository's docs folder, never copied, so what the clerk sees is the
same text as the docs (docs/decisions/0011-online-help.md says where it is looked for).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PyQt6.QtCore import QUrl
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import QDialog, QHBoxLayout, QListWidget, QListWidgetItem, QTextBrowser

ENV_HELP_DIR = "DBMIS_HELP_DIR"


def guide_folder() -> Path | None:
    """``$DBMIS_HELP_DIR``, the source checkout's docs/user-guide, or <prefix>/share/dbmis/user-guide."""
    candidates = []
    if os.environ.get(ENV_HELP_DIR):
        candidates.append(Path(os.environ[ENV_HELP_DIR]))
    candidates.append(Path(__file__).resolve().parents[2] / "docs" / "user-guide")
    candidates.append(Path(sys.prefix) / "share" / "dbmis" / "user-guide")
    return next((c for c in candidates if (c / "index.md").is_file()), None)


def guide_for_page(page) -> str:
    """The guide F1 opens on a page: its ``help`` field, by default its name."""
    if page is None:
        return "index"
    return (page.help or page.name).removesuffix(".md")


def guide_title(text: str, fallback: str) -> str:
    return next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), fallback)


class HelpWindow(QDialog):
    """Contents on the left, the guide on the right; links between guides stay inside."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("help")
        self.setWindowTitle("DBMIS user guide")
        self.resize(900, 680)
        self.folder = guide_folder()
        self.current_name: str | None = None
        self.current_text = ""
        self.contents = QListWidget(objectName="help-contents", maximumWidth=240)
        self.browser = QTextBrowser(objectName="help-text")
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._follow)
        self.contents.currentItemChanged.connect(
            lambda item, _prev: item is not None and self.open_guide(item.data(256)))
        layout = QHBoxLayout(self)
        layout.addWidget(self.contents)
        layout.addWidget(self.browser, 1)
        self._fill_contents()

    def guides(self) -> list[str]:
        if self.folder is None:
            return []
        names = sorted(p.stem for p in self.folder.glob("*.md"))
        return ["index", *[n for n in names if n != "index"]] if "index" in names else names

    def _fill_contents(self) -> None:
        self.contents.blockSignals(True)
        for name in self.guides():
            text = (self.folder / f"{name}.md").read_text(encoding="utf-8")
            item = QListWidgetItem(guide_title(text, name))
            item.setData(256, name)
            self.contents.addItem(item)
        self.contents.blockSignals(False)

    def open_guide(self, name: str) -> str:
        """Show ``name`` (file stem); an unknown name shows the contents page with a note."""
        if self.folder is None:
            self.current_name, self.current_text = None, ""
            self.browser.setMarkdown("# User guide not found\n\nThe guide is in the docs/user-guide "
                                     f"folder of the DBMIS sources; set {ENV_HELP_DIR} to it.")
            return ""
        path = self.folder / f"{name}.md"
        note = ""
        if not path.is_file():
            note, path, name = f"There is no guide page for {name!r}.", self.folder / "index.md", "index"
        self.current_name = name
        self.current_text = path.read_text(encoding="utf-8")
        self.browser.setSearchPaths([str(self.folder)])
        self.browser.setMarkdown(f"*{note}*\n\n" + self.current_text if note else self.current_text)
        self.setWindowTitle(f"DBMIS user guide - {guide_title(self.current_text, name)}")
        for i in range(self.contents.count()):
            if self.contents.item(i).data(256) == name:
                self.contents.blockSignals(True)
                self.contents.setCurrentRow(i)
                self.contents.blockSignals(False)
        return name

    def _follow(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
            return
        target = url.path().rsplit("/", 1)[-1]
        if target.endswith(".md"):
            self.open_guide(target.removesuffix(".md"))
            if url.fragment():
                self.browser.scrollToAnchor(url.fragment())
        elif url.fragment():
            self.browser.scrollToAnchor(url.fragment())
