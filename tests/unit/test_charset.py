"""decode_html on real-world damage: stray bytes and literal U+FFFD in UTF-8 pages."""

from __future__ import annotations

from veille.pipeline.charset import decode_html

FRENCH = ("<html><head><meta charset='utf-8'></head><body><p>La coopération sécuritaire entre "
          "la DGSN et la DGSI s'est renforcée après la réunion de Rabat.</p>" * 8)


def test_literal_replacement_character_does_not_make_utf8_cp1252() -> None:
    body = "<p>The Senate’s plenary session \ufffd was shared on Twitter.</p>".encode()
    text = decode_html(body, {"content-type": "text/html; charset=utf-8"})
    assert "Senate’s" in text and "â€" not in text


def test_a_few_bad_bytes_keep_a_utf8_page_utf8() -> None:
    body = FRENCH.encode() + b"<p>caf\xe9 \xff</p>" + FRENCH.encode()
    text = decode_html(body, {"content-type": "text/html"})
    assert "coopération sécuritaire" in text and "أ" not in text
    assert text.count("\ufffd") == 2  # only the bad bytes are replaced


def test_a_page_clearly_not_utf8_is_redecoded() -> None:
    assert "coopération" in decode_html(FRENCH.encode("cp1252"), {"content-type": "text/html"})
    arabic = "<p>المديرية العامة للأمن الوطني تعزز التعاون مع فرنسا</p>" * 5
    assert "للأمن الوطني" in decode_html(arabic.encode("cp1256"), {})
