"""The PDF canvas: fpdf2 with fonts, running header/footer, table of contents and literal text.

Every string goes through :func:`clean_text` and is drawn with fpdf2's plain-text calls
(``markdown=False``, no ``write_html``), so nothing user-supplied is interpreted as markup.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess
from pathlib import Path
from typing import Container, Literal, Sequence

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from fairaudit._choices import PAPERS, Paper

_BAD_PAPER = "Unknown paper size {0!r}; expected one of {1}"

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/TTF"), Path("/usr/share/fonts/dejavu"))
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
_MONO_FILE = "DejaVuSansMono.ttf"
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")
#: Page-count alias: fpdf2 replaces it in page content, so it must be something user text cannot contain.
_ALIAS = "\x00pages\x00"


def _dejavu_dir() -> Path | None:
    for folder in _FONT_DIRS:
        if all((folder / name).is_file() for name in (*_FONT_FILES.values(), _MONO_FILE)):
            return folder
    if shutil.which("fc-match"):
        found = subprocess.run(["fc-match", "-f", "%{file}", "DejaVu Sans"], capture_output=True, text=True,
                               check=False).stdout
        folder = Path(found).parent if found.endswith("DejaVuSans.ttf") else None
        if folder and all((folder / n).is_file() for n in (*_FONT_FILES.values(), _MONO_FILE)):
            return folder
    return None


def clean_text(value: object, *, glyphs: Container[int] | None = None) -> str:
    r"""Text safe to draw literally with a font covering ``glyphs`` (code points; ``None``: latin-1 core font).

    Control characters (tab included) become ``\xNN`` and characters the font cannot draw become
    ``\uXXXX``, so nothing is dropped silently or interpreted.

    >>> print(clean_text("a\tb"))
    a\x09b
    >>> print(clean_text("Ωmega é"))
    \u03a9mega é
    """
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))
    if glyphs is None:
        return "".join(c if ord(c) < 256 else f"\\u{ord(c):04x}" for c in text)
    return "".join(c if c == "\n" or ord(c) in glyphs else f"\\u{ord(c):04x}" for c in text)


class ReportPDF(FPDF):
    """An fpdf2 document with the report's fonts, running header and ``Page n of N`` footer."""

    def __init__(self, *, paper: Paper, running_title: str, footer_note: str, creation_date: dt.datetime) -> None:
        if paper not in PAPERS:
            raise ValueError(_BAD_PAPER.format(paper, PAPERS))
        super().__init__(orientation="portrait", unit="mm", format=paper.lower())
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(True, margin=18)
        self.alias_nb_pages(_ALIAS)
        self.set_creation_date(creation_date)
        self.set_producer("fairaudit")
        font_dir = _dejavu_dir()
        self.has_unicode_font = font_dir is not None
        if font_dir is not None:
            for style, name in _FONT_FILES.items():
                self.add_font("DejaVu", style, str(font_dir / name))
            self.add_font("DejaVuMono", "", str(font_dir / _MONO_FILE))
            self.body_font, self.mono_font = "DejaVu", "DejaVuMono"
        else:
            self.body_font, self.mono_font = "Helvetica", "Courier"
        self.running_title = self.clean(running_title)
        self.footer_note = self.clean(footer_note)
        self.set_title(self.running_title)
        self.set_font(self.body_font, size=10)

    # ---- page furniture --------------------------------------------------------------------
    def clean(self, value: object) -> str:
        """:func:`clean_text` for this document's font."""
        return clean_text(value, glyphs=self.fonts["dejavu"].cmap if self.has_unicode_font else None)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(self.body_font, size=8)
        self.set_text_color(110)
        self.cell(0, 5, self.running_title[:110], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(200)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(4)
        self.set_text_color(0)
        self.set_font(self.body_font, size=10)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.body_font, size=8)
        self.set_text_color(110)
        self.cell(0, 5, self.footer_note[:90], align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()} of {_ALIAS}", align="R")
        self.set_text_color(0)

    # ---- content -------------------------------------------------------------------------
    def heading(self, title: str, level: int = 0) -> None:
        """A numbered-free section title that also enters the outline and the table of contents."""
        if level == 0:
            if self.get_y() > self.t_margin + 12:  # something beyond the running header is on this page
                self.add_page()
        elif self.will_page_break(24):
            self.add_page()
        text = self.clean(title)
        self.start_section(text[:120], level=level, strict=False)
        self.set_font(self.body_font, "B", size=16 if level == 0 else 12.5)
        self.multi_cell(0, 8 if level == 0 else 6.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)
        self.set_font(self.body_font, size=10)

    def paragraph(self, value: object, *, style: Literal["", "B", "I"] = "", size: float = 10) -> None:
        """Wrapped plain text (never interpreted as markup)."""
        self.set_font(self.body_font, style, size=size)
        self.multi_cell(0, size * 0.5, self.clean(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT, markdown=False)
        self.ln(1.5)
        self.set_font(self.body_font, size=10)

    def bullets(self, items: Sequence[object], *, size: float = 10) -> None:
        """A bulleted list of plain-text items."""
        self.set_font(self.body_font, size=size)
        for item in items:
            self.set_x(self.l_margin + 3)
            self.multi_cell(0, size * 0.5, "- " + self.clean(item), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(0.8)
        self.ln(1)

    def monospace(self, value: str, *, size: float = 7.5) -> None:
        """Pre-formatted text (configuration JSON), wrapped at the margin."""
        self.set_font(self.mono_font, size=size)
        for line in self.clean(value).splitlines() or [""]:
            self.multi_cell(0, size * 0.45, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT, wrapmode="CHAR")
        self.set_font(self.body_font, size=10)
        self.ln(2)

    def data_table(self, header: Sequence[str], rows: Sequence[Sequence[object]], *, widths: Sequence[float] | None = None,
              size: float = 8, align: str = "LEFT", padding: float = 0.8) -> None:
        """A table with a repeated bold heading row; every cell drawn as literal text.

        ``padding`` is the space (mm) above and below each cell's text; long tables use less.
        """
        if not rows:
            return
        self.set_font(self.body_font, size=size)
        self.set_draw_color(190)
        with super().table(col_widths=tuple(widths) if widths else None, text_align=align, width=self.epw,
                           line_height=size * 0.5, padding=(padding, 1.2), markdown=False, repeat_headings=1,
                           headings_style=FontFace(emphasis="BOLD", fill_color=(235, 238, 243)),
                           first_row_as_headings=True) as table:
            for values in (header, *rows):
                row = table.row()
                for value in values:
                    row.cell(self.clean(value))
        self.ln(3)
        self.set_font(self.body_font, size=10)

    def png(self, data: bytes, *, caption: str | None = None) -> None:
        """A chart image at full text width (new page first when it would not fit)."""
        image = io.BytesIO(data)
        width_px, height_px = _png_size(data)
        height = self.epw * height_px / width_px
        if self.will_page_break(height + 8):
            self.add_page()
        self.image(image, w=self.epw, h=height)
        if caption:
            self.paragraph(caption, style="I", size=8)
        self.ln(2)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG from its IHDR chunk.

    >>> _png_size(b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00\\x00\\x00\\rIHDR" + (900).to_bytes(4, "big") + (450).to_bytes(4, "big"))
    (900, 450)
    """
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def render_toc(pdf: FPDF, outline: list) -> None:
    """The table-of-contents page: one line per section with its page number (linked)."""
    pdf.set_font(pdf.body_font, "B", size=16)
    pdf.set_x(pdf.l_margin)
    pdf.cell(0, 10, "Contents", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)
    for section in outline:
        pdf.set_font(pdf.body_font, "B" if section.level == 0 else "", size=10 if section.level == 0 else 9)
        indent = 6 * section.level
        link = pdf.add_link(page=section.page_number)
        pdf.set_x(pdf.l_margin + indent)
        name = section.name if len(section.name) <= 90 else section.name[:87] + "..."
        pdf.cell(pdf.epw - indent - 14, 5.5, name, link=link)
        pdf.cell(14, 5.5, str(section.page_number), align="R", link=link, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    placeholder = pdf.toc_placeholder
    while pdf.page < placeholder.start_page + placeholder.pages - 1:  # fill the pages reserved for the contents
        pdf.add_page()
