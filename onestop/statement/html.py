"""The statement as one self-contained HTML page: inline CSS, the QR code as inline SVG.

Nothing is fetched from elsewhere (no font, script or image): the page prints as it shows,
offline. Every value is escaped by the template engine.
"""

from __future__ import annotations

import jinja2
import segno
from markupsafe import Markup

from onestop.domain.money import format_yuan
from onestop.statement import (
    AMOUNT_LABELS,
    CLASS_LABELS,
    FEE_CATEGORY_LABELS,
    HEADINGS,
    STATUS_LABELS,
    VISIT_TYPE_LABELS,
)
from onestop.statement.model import SPLIT_FIELDS, Statement

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("onestop.statement", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENVIRONMENT.filters["yuan"] = format_yuan


def qr_svg(text: str) -> Markup:
    """``text`` as a QR code, an ``<svg>`` element to put inline (error correction M)."""
    # segno writes the element itself, from the text's modules only: markup, not text.
    return Markup(segno.make(text, error="m", micro=False).svg_inline(scale=3, border=2))


def render_html(statement: Statement) -> str:
    """The statement as an HTML page (UTF-8 text)."""
    return _ENVIRONMENT.get_template("statement.html").render(
        s=statement,
        h=HEADINGS,
        amount_labels=AMOUNT_LABELS,
        split_fields=SPLIT_FIELDS,
        fee_labels=FEE_CATEGORY_LABELS,
        class_labels=CLASS_LABELS,
        status_label=STATUS_LABELS.get(statement.status, statement.status),
        visit_label=VISIT_TYPE_LABELS.get(statement.visit_type, statement.visit_type),
        qr=qr_svg(statement.seal),
    )
