"""Messages as mail programs really write them → ``email.receive``'s JSON (no server)."""

from __future__ import annotations

from flowrunner.nodes.email.parse import parse_message


def _parse(raw: bytes, **options: object) -> dict[str, object]:
    return parse_message(
        raw,
        include_attachments=bool(options.get("include", False)),
        max_attachment_bytes=1000,
    )


def test_an_unknown_charset_is_read_as_utf8_with_replacements_not_a_failure() -> None:
    message = _parse(
        b"Subject: odd\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\n"
        b"na\xc3\xafve \xff\r\n"
    )
    assert message["text"] == "naïve \ufffd\n"


def test_a_body_that_lies_about_its_charset_is_still_read() -> None:
    message = _parse(
        b"Subject: utf8?\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nd\xe9j\xe0\r\n"
    )
    assert isinstance(message["text"], str)
    assert message["text"].startswith("d")


def test_broken_headers_fall_back_to_their_decoded_text() -> None:
    message = _parse(
        b"From: =?utf-8?q?J=C3=BCrgen?= <juergen@example.test\r\n"
        b"To: undisclosed-recipients:;\r\n"
        b"Subject: =?iso-8859-1?q?caf=E9?= =?utf-8?b?4pyT?=\r\n"
        b"Date: not a date\r\n\r\nx\r\n"
    )
    assert message["subject"] == "café✓"
    assert message["date"] is None
    assert message["to"] == []
    assert "Jürgen" in str(message["from"])


def test_a_message_without_bodies_or_headers_is_empty_not_an_error() -> None:
    message = _parse(b"\r\n")
    assert message["subject"] == ""
    assert message["from"] is None
    assert message["text"] == ""
    assert message["attachments"] == []


def test_an_html_only_message_has_no_text() -> None:
    message = _parse(b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>hi</p>\r\n")
    assert (message["text"], message["html"]) == (None, "<p>hi</p>\n")
