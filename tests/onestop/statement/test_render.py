"""A 200-line statement as HTML and as PDF, read back as a patient's printer would see it.

The PDF is laid out once for the module (about a second), then read with poppler's tools:
``pdftotext -layout`` for every line's code, the headings and the totals, ``pdftoppm`` for
a page image that is A4 and not blank. The files are kept under ``$ONESTOP_TEST_ARTIFACTS``
(default ``.artifacts/statement/``) to look at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from onestop.domain.money import format_yuan
from onestop.signing import canonical_json, key_id, sign
from onestop.statement import FEE_CATEGORY_LABELS, HEADINGS, page_label
from onestop.statement.html import qr_svg, render_html
from onestop.statement.model import Statement, build_statement
from onestop.statement.pdf import KNOWN_FONTS, find_cjk_font, render_pdf
from onestop.statement.seal import Seal
from tests.support.cases import REPO_ROOT
from tests.support.statements import long_catalog, long_result

LINES = 200
FONT = find_cjk_font()
needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) is not installed; CI installs it",
)


def _artifacts() -> Path:
    base = os.environ.get("ONESTOP_TEST_ARTIFACTS")
    directory = Path(base) / "statement" if base else REPO_ROOT / ".artifacts" / "statement"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _statement() -> Statement:
    key = Ed25519PrivateKey.generate()
    catalog = long_catalog(LINES)
    result = long_result(catalog)
    result["signature"] = {
        "key_id": key_id(key.public_key()),
        "algorithm": "ed25519",
        "value": sign(key, canonical_json(result)),
    }
    seal = Seal.of_result(result, key_id(key.public_key()))
    return build_statement(
        result,
        catalog,
        hospital="郑州市第三人民医院",
        patient_name="张*",
        patient_id_number="4101**********1234",
        seal=seal.signed(lambda message: sign(key, message)).text(),
    )


@dataclass(frozen=True)
class Printed:
    statement: Statement
    pdf: Path
    text: str
    seconds: float


@pytest.fixture(scope="module")
def printed() -> Printed:
    if FONT is None:
        pytest.fail(f"no CJK font: install fonts-wqy-microhei ({KNOWN_FONTS[0]})")
    statement = _statement()
    started = time.perf_counter()
    body = render_pdf(statement, FONT)
    seconds = time.perf_counter() - started
    directory = _artifacts()
    pdf = directory / "statement-200.pdf"
    pdf.write_bytes(body)
    (directory / "statement-200.json").write_text(
        json.dumps({"lines": LINES, "render_seconds": round(seconds, 3), "bytes": len(body)})
    )
    text = ""
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
    return Printed(statement, pdf, text, seconds)


def test_the_pdf_embeds_a_subset_of_the_font_and_renders_in_seconds(printed: Printed) -> None:
    body = printed.pdf.read_bytes()
    assert body.startswith(b"%PDF-")
    assert b"/FontFile2" in body  # the TrueType font travels inside the file
    # A subset: the whole WenQuanYi Micro Hei is about 5 MB.
    assert len(body) < 400_000
    assert printed.seconds < 10


@needs_poppler
def test_every_line_heading_and_total_is_in_the_pdf_text(printed: Printed) -> None:
    text = printed.text
    codes = set(re.findall(r"\bT\d{4}\b", text))
    assert codes == {f"T{number:04d}" for number in range(1, LINES + 1)}
    for heading in ("title", "patient", "lines", "subtotal", "summary", "notes", "seal"):
        assert HEADINGS[heading] in text, heading
    for group in printed.statement.groups:
        assert f"{group.fee_category.value} {FEE_CATEGORY_LABELS[group.fee_category]}" in text
        assert format_yuan(group.subtotal.amount) in text
    for label, fen, _ in printed.statement.summary:
        assert re.search(rf"{re.escape(label)}\s+{re.escape(format_yuan(fen))}\n", text), label
    assert "张* 4101**********1234" in text
    # Every page says which it is, of how many; the table's headings repeat on each.
    pages = text.count("\f") + (0 if text.endswith("\f") else 1)
    assert pages >= 4
    for page in range(1, pages + 1):
        assert page_label(page, pages) in text
    assert text.count("Self-pay-first") >= pages
    # The seal the QR code holds is printed beside it (wrapped: no spaces in a seal).
    assert printed.statement.seal in "".join(text.split())


@needs_poppler
def test_the_first_page_is_an_a4_image_that_is_not_blank(printed: Printed) -> None:
    prefix = printed.pdf.with_name("statement-200-page")
    subprocess.run(
        ["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(printed.pdf), str(prefix)],
        check=True,
    )
    (image_path,) = printed.pdf.parent.glob("statement-200-page*.png")
    with Image.open(image_path) as image:
        width, height = image.size
        # A4 (210 x 297 mm) at 50 dpi, give or take poppler's rounding.
        assert abs(width - 413) <= 1
        assert abs(height - 585) <= 1
        grey = image.convert("L")
        dark = sum(grey.histogram()[:128])
    # Text on most of the page, but far from a black page.
    assert 0.01 < dark / (width * height) < 0.5


def test_the_html_is_self_contained_and_escaped() -> None:
    statement = _statement()
    page = render_html(statement)
    assert page.startswith("<!DOCTYPE html>")
    for code in (f"T{number:04d}" for number in range(1, LINES + 1)):
        assert f"<td>{code}</td>" in page
    for heading in ("title", "lines", "subtotal", "summary", "seal"):
        assert HEADINGS[heading] in page
    assert "起付标准 900.00 yuan &lt;b&gt;paid&lt;/b&gt; first" in page
    # No resource from elsewhere: the QR code is inline SVG of exactly the seal's text.
    assert not re.search(r"(src|href)=|url\(|@import", page)
    assert str(qr_svg(statement.seal)) in page
    assert statement.seal in page


def test_the_qr_code_holds_the_seal_text() -> None:
    seal = _statement().seal
    code = segno.make(seal, error="m", micro=False)
    # Byte mode holds the UTF-8 text as it is: a reader gets it back character for character.
    assert code.mode == "byte"
    assert code.error == "M"
    assert code.designator.endswith("-M")
    assert isinstance(code.version, int)
    assert code.version <= 12  # 65 modules or fewer: 0.6 mm each at 40 mm, a phone reads it


def test_the_font_set_is_used_or_none_is(tmp_path: Path) -> None:
    # A setting that names a missing file is not papered over with another font.
    assert find_cjk_font(tmp_path / "missing.ttf") is None
    chosen = tmp_path / "chosen.ttf"
    chosen.write_bytes(b"")
    assert find_cjk_font(chosen) == chosen
    # Unset: a known Debian path first (fonts-wqy-microhei, which CI installs).
    assert find_cjk_font() == KNOWN_FONTS[0]
