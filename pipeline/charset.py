"""Turn the bytes of a fetched HTML page into text, whatever its pages claim.

Order of evidence: a byte-order mark, then the charset of the HTTP ``Content-Type``
header, then ``<meta charset>`` / ``http-equiv`` in the first bytes, then detection by
the legacy charsets Moroccan outlets use (windows-1252, windows-1256), then
charset-normalizer. A declared charset is only trusted when the body decodes with it
cleanly and the result does not read as mojibake (outlets often declare UTF-8 and send
windows-1256, or the reverse).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

HEADER_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:-]+)", re.I)
META_CHARSET_RE = re.compile(
    rb"""<meta[^>]{0,400}?charset\s*=\s*["']?\s*([\w.:-]+)""", re.I
)
TAG_RE = re.compile(r"<[^>]*>|&[#\w]+;")
SNIFF_BYTES = 4096
MESS_LIMIT = 0.2
UTF8_VALID_PER_BAD = 4  # valid multi-byte characters per invalid byte to call a body UTF-8
FEW_WORDS = 50
MESS_SAMPLE = 20_000
BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# what Moroccan outlets use when they are not UTF-8: tried when declarations fail, before
# statistical detection (which needs more text than a short page has)
LIKELY = ("cp1252", "cp1256")
# labels the WHATWG encoding standard maps to a superset codec
ALIASES = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "ascii": "cp1252", "us-ascii": "cp1252",
           "iso-8859-9": "cp1254", "tis-620": "cp874", "iso-8859-11": "cp874"}


def _codec(label: str | None) -> str | None:
    """Python codec name for a charset label, or None when unknown."""
    if not label:
        return None
    label = label.strip().lower()
    try:
        name = codecs.lookup(label).name
    except LookupError:
        return None
    return ALIASES.get(name, ALIASES.get(label, name))


def header_charset(headers: Mapping[str, str]) -> str | None:
    """Codec named by the Content-Type header (any case of the header name), or None."""
    for key, value in headers.items():
        if key.lower() == "content-type" and value:
            match = HEADER_CHARSET_RE.search(value)
            return _codec(match.group(1)) if match else None
    return None


def meta_charset(body: bytes) -> str | None:
    """Codec declared by ``<meta charset>`` or ``http-equiv`` in the first bytes, or None."""
    match = META_CHARSET_RE.search(body[:SNIFF_BYTES])
    return _codec(match.group(1).decode("ascii", "ignore")) if match else None


def _is_utf8(codec: str) -> bool:
    return codec.replace("_", "-") in ("utf-8", "utf-8-sig", "utf8")


def _mess(text: str) -> float:
    """Share of the visible text that reads as mojibake (0 = clean)."""
    sample = TAG_RE.sub(" ", text[:MESS_SAMPLE * 3])[:MESS_SAMPLE]
    return mess_ratio(sample, 1.0) if sample.strip() else 0.0


def _words(text: str) -> int:
    return len(TAG_RE.sub(" ", text).split())


def _try(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf8(body: bytes) -> str | None:
    """The body as UTF-8 if it is UTF-8 up to a few stray bytes or a cut last character.

    Counted on the bytes, not on U+FFFD in the result: a valid UTF-8 page may carry a
    literal U+FFFD. Legacy single-byte text (cp1252 accents, cp1256 Arabic) practically
    never forms valid multi-byte sequences, so a page whose valid multi-byte characters
    outnumber its invalid bytes several times over is UTF-8 with a few bad bytes, which
    are replaced; the rest of the page stays readable.
    """
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", errors="replace")
    literal = body.count("\ufffd".encode())
    errors = text.count("\ufffd") - literal
    multibyte = sum(1 for ch in text if ch > "\x7f") - errors - literal
    return text if multibyte >= UTF8_VALID_PER_BAD * errors else None


def decode_html(body: bytes, headers: Mapping[str, str]) -> str:
    """Decode an HTML body to str.

    Args:
        body: the raw bytes as received.
        headers: HTTP response headers (names in any case).

    Returns:
        The page as text; never raises. Undecodable bytes end up as U+FFFD.
    """
    if not body:
        return ""
    for bom, codec in BOMS:
        if body.startswith(bom):
            return body.decode(codec, errors="replace")

    declared = [c for c in (header_charset(headers), meta_charset(body)) if c]
    if body.isascii():
        return body.decode("ascii")
    # a body that is (nearly all) valid UTF-8 is UTF-8, whatever it declares: legacy
    # single-byte text practically never forms valid multi-byte sequences
    utf8_text = _utf8(body)
    if utf8_text is not None:
        return utf8_text

    candidates: list[tuple[float, int, str]] = []
    for rank, codec in enumerate(dict.fromkeys([*declared, *LIKELY])):
        if _is_utf8(codec):
            continue
        text = _try(body, codec)
        if text is None:
            continue
        mess = _mess(text)
        if mess < MESS_LIMIT and rank == 0 and declared:
            return text
        candidates.append((mess, rank, text))
    candidates.sort()
    # too little text for mess ratios or detection to mean much: least messy candidate
    if candidates and (candidates[0][0] < MESS_LIMIT or _words(candidates[0][2]) < FEW_WORDS):
        return candidates[0][2]

    best = from_bytes(body).best()
    if best is not None:
        return str(best)
    if candidates:
        return candidates[0][2]
    return body.decode(declared[0] if declared else "utf-8", errors="replace")
