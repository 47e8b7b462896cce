"""The statement as a PDF (A4), with a CJK font embedded (the characters used only).

A PDF viewer has no Chinese glyphs of its own to lend: the font travels inside the file.
WenQuanYi Micro Hei (Debian's ``fonts-wqy-microhei``) is the one looked for first; another
TrueType CJK font can be named (``ONESTOP_GATEWAY_STATEMENT_FONT``).
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import segno
from fpdf import FPDF
from fpdf.enums import TableBordersLayout, XPos, YPos
from fpdf.fonts import FontFace

from onestop.domain.money import format_yuan
from onestop.statement import (
    AMOUNT_LABELS,
    CLASS_LABELS,
    FEE_CATEGORY_LABELS,
    HEADINGS,
    STATUS_LABELS,
    VISIT_TYPE_LABELS,
    page_label,
)
from onestop.statement.model import SPLIT_FIELDS, Statement

KNOWN_FONTS = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/truetype/arphic/uming.ttc"),
)
"""Where Debian and Ubuntu packages put TrueType CJK fonts (fonts-wqy-microhei first)."""

FONT_PACKAGE = "fonts-wqy-microhei"
"""The Debian/Ubuntu package that provides the font the statement is made with."""

_TRUETYPE = (".ttf", ".ttc")
_FAMILY = "cjk"
_MARGIN = 10.0
_WIDTHS = (9, 20, 49, 10, 21, 21, 20, 20, 20)
"""Column widths (mm) of the lines' table: 190 mm, A4 less the margins."""


def _fontconfig_cjk_fonts() -> list[Path]:
    """TrueType fonts fontconfig lists for Chinese (``fc-list :lang=zh``).

    ``fc-match :lang=zh`` is not asked: on a machine whose only CJK font was added later, it
    answers a Latin font (DejaVu) that has no Chinese glyphs.
    """
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    try:
        listed = subprocess.run(
            [fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    paths = (Path(line.strip().rstrip(":")) for line in listed.splitlines() if line.strip())
    return sorted(path for path in paths if path.suffix.lower() in _TRUETYPE)


def find_cjk_font(configured: Path | None = None) -> Path | None:
    """The CJK font to embed, ``None`` when there is none.

    Args:
        configured: the font the settings name; when set, that file or nothing (a setting
            that names a missing file is a fault to see, not one to paper over).
    """
    if configured is not None:
        return configured if configured.is_file() else None
    for path in (*KNOWN_FONTS, *_fontconfig_cjk_fonts()):
        if path.is_file():
            return path
    return None


class _StatementPdf(FPDF):
    """An A4 page with the statement's footer: ``第 n 页 / Page n of N``."""

    def __init__(self, heading: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.heading = heading

    def header(self) -> None:
        if self.page_no() > 1:
            self.set_font(_FAMILY, size=7)
            self.cell(0, 4, self.heading, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
            self.ln(1)

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(_FAMILY, size=7)
        self.cell(0, 5, page_label(self.page_no(), "{nb}"), align="C")


def _yuan_cells(values: Sequence[int]) -> list[str]:
    return [format_yuan(value) for value in values]


def render_pdf(statement: Statement, font: Path) -> bytes:
    """The statement as a PDF document.

    Args:
        statement: what to print.
        font: a TrueType CJK font (a ``.ttc`` collection's first face is used).
    """
    heading = f"{statement.hospital} · {HEADINGS['title']} · {statement.settlement_id}"
    pdf = _StatementPdf(heading)
    pdf.set_title(f"{HEADINGS['title']} {statement.settlement_id}")
    pdf.set_creator("onestop")
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_font(_FAMILY, fname=str(font))
    pdf.add_page()

    pdf.set_font(_FAMILY, size=14)
    pdf.cell(
        0, 8, f"{statement.hospital} · {HEADINGS['title']}", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font(_FAMILY, size=9)
    facts = [
        (
            HEADINGS["patient"],
            f"{statement.patient_name} {statement.patient_id_number} "
            f"({HEADINGS['member']} {statement.member_id})",
        ),
        (
            HEADINGS["visit"],
            f"{statement.visit_id} · "
            f"{VISIT_TYPE_LABELS.get(statement.visit_type, statement.visit_type)}",
        ),
        (
            HEADINGS["settlement"],
            f"{statement.settlement_id} · {STATUS_LABELS.get(statement.status, statement.status)}",
        ),
        (HEADINGS["settled_at"], statement.settled_at),
    ]
    if statement.reversed_at:
        facts.append((HEADINGS["reversed_at"], statement.reversed_at))
    facts.append((HEADINGS["policy"], statement.policy))
    for label, value in facts:
        pdf.cell(40, 5, label)
        pdf.cell(0, 5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    pdf.set_font(_FAMILY, size=11)
    pdf.cell(
        0, 6, f"{HEADINGS['lines']} ({statement.line_count})", new_x=XPos.LMARGIN, new_y=YPos.NEXT
    )
    pdf.set_font(_FAMILY, size=7)
    plain = FontFace(emphasis="")
    group_style = FontFace(emphasis="", fill_color=(236, 236, 236))
    align = ("LEFT", "LEFT", "LEFT", "CENTER", *("RIGHT",) * len(SPLIT_FIELDS))
    with pdf.table(
        col_widths=_WIDTHS,
        text_align=align,
        headings_style=FontFace(emphasis="", fill_color=(220, 220, 220)),
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        line_height=3.6,
        repeat_headings=1,
        first_row_as_headings=True,
    ) as table:
        table.row(
            [
                HEADINGS["line_no"],
                HEADINGS["code"],
                HEADINGS["name"],
                HEADINGS["class"],
                HEADINGS["amount"],
                *(AMOUNT_LABELS[field] for field in SPLIT_FIELDS[1:]),
            ]
        )
        for group in statement.groups:
            label = FEE_CATEGORY_LABELS[group.fee_category]
            row = table.row(style=group_style)
            row.cell(f"{group.fee_category.value} {label}", colspan=len(_WIDTHS), align="LEFT")
            for line in group.lines:
                table.row(
                    [
                        str(line.line_no),
                        line.code,
                        line.name,
                        CLASS_LABELS[line.category],
                        *_yuan_cells([getattr(line.split, field) for field in SPLIT_FIELDS]),
                    ],
                    style=plain,
                )
            row = table.row(style=plain)
            row.cell(f"{HEADINGS['subtotal']} {label}", colspan=4, align="LEFT")
            for value in _yuan_cells([getattr(group.subtotal, field) for field in SPLIT_FIELDS]):
                row.cell(value)

    pdf.ln(3)
    _summary(pdf, statement)
    _seal(pdf, statement)
    return bytes(pdf.output())


def _summary(pdf: FPDF, statement: Statement) -> None:
    """The amounts, then the notes."""
    pdf.set_font(_FAMILY, size=11)
    pdf.cell(0, 6, HEADINGS["summary"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FAMILY, size=9)
    for label, fen, indent in statement.summary:
        pdf.set_x(_MARGIN + indent * 2.5)
        pdf.cell(80 - indent * 2.5, 5, label)
        pdf.cell(30, 5, format_yuan(fen), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if statement.notes:
        pdf.ln(2)
        pdf.set_font(_FAMILY, size=11)
        pdf.cell(0, 6, HEADINGS["notes"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FAMILY, size=9)
        for note in statement.notes:
            pdf.multi_cell(0, 5, f"* {note}", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _seal(pdf: FPDF, statement: Statement) -> None:
    """The signature, the QR code of the seal, and the seal's text beside it."""
    size = 40.0
    if pdf.get_y() + size + 14 > pdf.h - 15:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(_FAMILY, size=11)
    pdf.cell(0, 6, HEADINGS["seal"], new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    top = pdf.get_y()
    image = io.BytesIO()
    segno.make(statement.seal, error="m", micro=False).save(image, kind="png", scale=8, border=2)
    image.seek(0)
    pdf.image(image, x=_MARGIN, y=top, w=size, h=size)
    pdf.set_font(_FAMILY, size=7)
    left = _MARGIN + size + 4
    pdf.set_xy(left, top)
    width = pdf.w - _MARGIN - left
    pdf.multi_cell(width, 3.5, f"{HEADINGS['key']}: {statement.key_id} (ed25519)", new_x=XPos.LEFT)
    pdf.multi_cell(width, 3.5, statement.signature, new_x=XPos.LEFT)
    pdf.set_xy(left, pdf.get_y() + 1)
    pdf.multi_cell(width, 3.5, HEADINGS["verify"], new_x=XPos.LEFT)
    pdf.multi_cell(width, 3.5, statement.seal, new_x=XPos.LEFT)
    pdf.set_y(max(pdf.get_y(), top + size) + 2)
