"""Printable documents: jinja2 templates rendered as text (80 mm receipt printers) or as PDF.

PDF uses fpdf2 with the DejaVu fonts (Debian package fonts-dejavu-core) so names in any script
print; where the fonts are missing it falls back to the PDF core fonts (Latin-1 only) rather than
refusing to print.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
RECEIPT_WIDTH_MM = 80


@lru_cache(maxsize=None)
def environment(package: str = "dbmis_core") -> jinja2.Environment:
    """Templates of ``package`` (its ``templates`` folder); plugins pass their own package name."""
    return jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"),
                              autoescape=jinja2.select_autoescape(["html", "htm"]),
                              keep_trailing_newline=True,
                              auto_reload=False)  # package files: no stat per receipt


def render(template: str, package: str = "dbmis_core", **context) -> str:
    return environment(package).get_template(template).render(**context)


def _pdf(orientation="P", unit="mm", format="A4"):
    from fpdf import FPDF

    pdf = FPDF(orientation=orientation, unit=unit, format=format)
    pdf.set_creator("DBMIS")
    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    mono = FONT_DIR / "DejaVuSansMono.ttf"
    if regular.exists() and bold.exists() and mono.exists():
        pdf.add_font("dejavu", "", str(regular))
        pdf.add_font("dejavu", "B", str(bold))
        pdf.add_font("dejavumono", "", str(mono))
        pdf.dbmis_fonts = ("dejavu", "dejavumono")
    else:
        pdf.dbmis_fonts = ("helvetica", "courier")
    return pdf


def text_to_pdf(text: str, title: str = "", width_mm: float = RECEIPT_WIDTH_MM) -> bytes:
    """A monospaced text document (a receipt) on a roll ``width_mm`` wide, as long as it needs."""
    lines = text.splitlines() or [""]
    line_h = 4.0
    height = max(60.0, 10 + line_h * len(lines))
    pdf = _pdf(format=(width_mm, height))
    pdf.set_title(title)
    pdf.set_margins(3, 4, 3)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    widest = max(len(line) for line in lines) or 1
    # fit the widest line on the roll: monospace width is 0.6 em per character
    size = min(9.0, (width_mm - 6) / (0.6 * widest) * 72 / 25.4)
    pdf.set_font(pdf.dbmis_fonts[1], size=size)
    for line in lines:
        pdf.cell(0, line_h, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def html_to_pdf(html: str, title: str = "") -> bytes:
    """An A4 document from simple HTML (headings, paragraphs, tables) rendered by a template."""
    pdf = _pdf()
    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font(pdf.dbmis_fonts[0], size=10)
    pdf.write_html(html, font_family=pdf.dbmis_fonts[0])
    return bytes(pdf.output())
