"""``email.receive`` against a real Dovecot: messages delivered by dovecot-lda, read back."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest

from flowrunner.engine import NodeEvent, Observer, RunResult
from flowrunner.nodes.email import receive
from tests.conftest import HANG_GUARD
from tests.mail import Certificate, Dovecot, silent_server
from tests.nodes.email.flows import imap_params, run_node

LATIN1 = (
    b"From: =?iso-8859-1?q?J=FCrgen_M=FCller?= <juergen@example.test>\r\n"
    b"To: Ana <ana@example.test>\r\n"
    b"Subject: =?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=\r\n"
    b"Date: Tue, 02 Jan 2024 10:00:00 +0100\r\n"
    b"Message-ID: <latin1@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Sch\xf6ne Gr\xfc\xdfe, \xe7a va?\r\n"
)

MULTIPART = (
    b"From: Bo <bo@example.test>\r\n"
    b"To: ana@example.test, Cy <cy@example.test>\r\n"
    b"Cc: dee@example.test\r\n"
    b"Subject: =?utf-8?b?UmVwb3J0IOKckw==?=\r\n"
    b"Date: Wed, 03 Jan 2024 12:30:00 +0000\r\n"
    b"Message-ID: <multi@example.test>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b'Content-Type: multipart/alternative; boundary="YY"\r\n'
    b"\r\n"
    b"--YY\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=C3=A9 report\r\n"
    b"--YY\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"\r\n"
    b"<p>Caf\xc3\xa9 <b>report</b></p>\r\n"
    b"--YY--\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.bin\r\n"
    b"\r\n" + base64.encodebytes(bytes(range(256))).replace(b"\n", b"\r\n") + b"--XX--\r\n"
)


def _plain(subject: str, sender: str = "x@example.test", day: str = "01 Feb 2024") -> bytes:
    return (
        f"From: {sender}\r\nTo: ana@example.test\r\nSubject: {subject}\r\n"
        f"Date: Thu, {day} 09:00:00 +0000\r\n\r\nbody of {subject}\r\n"
    ).encode()


async def _receive(
    imap_server: Dovecot,
    certificate: Certificate,
    mailbox: tuple[str, str],
    *,
    tls: str = "implicit",
    error_edge: bool = False,
    observer: Observer | None = None,
    **params: Any,
) -> RunResult:
    user, password = mailbox
    result = await run_node(
        "email.receive",
        imap_params(imap_server, certificate, user, tls, **params),
        secrets={"IMAP_PASSWORD": password},
        error_edge=error_edge,
        observer=observer,
    )
    return result


async def test_receive_decodes_headers_charsets_html_and_attachments(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    imap_server.deliver(mailbox[0], LATIN1)
    imap_server.deliver(mailbox[0], MULTIPART)
    result = await _receive(imap_server, certificate, mailbox, include_attachments=True)
    latin1, multi = result.output
    assert latin1["id"] == "1"
    assert latin1["from"] == "Jürgen Müller <juergen@example.test>"
    assert latin1["to"] == ["Ana <ana@example.test>"]
    assert latin1["subject"] == "Grüße aus Köln"
    assert latin1["date"] == "2024-01-02T10:00:00+01:00"
    assert latin1["message_id"] == "<latin1@example.test>"
    assert latin1["text"] == "Schöne Grüße, ça va?\n"
    assert latin1["html"] is None
    assert latin1["attachments"] == []
    assert latin1["flags"] == []

    assert multi["subject"] == "Report ✓"
    assert multi["to"] == ["ana@example.test", "Cy <cy@example.test>"]
    assert multi["cc"] == ["dee@example.test"]
    assert multi["text"] == "Café report"  # the line end before a boundary is the boundary's
    assert multi["html"] == "<p>Café <b>report</b></p>"
    assert multi["attachments"] == [
        {
            "filename": "résumé.bin",
            "content_type": "application/octet-stream",
            "size": 256,
            "content": base64.b64encode(bytes(range(256))).decode(),
        }
    ]
    # The original's key, beside shared.result.
    assert result.shared["email_result"] is result.output


async def test_attachments_are_described_without_content_unless_asked_and_capped(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    imap_server.deliver(mailbox[0], MULTIPART)
    plain = await _receive(imap_server, certificate, mailbox)
    [message] = plain.output
    assert message["attachments"] == [
        {"filename": "résumé.bin", "content_type": "application/octet-stream", "size": 256}
    ]
    capped = await _receive(
        imap_server, certificate, mailbox, include_attachments=True, max_attachment_bytes=100
    )
    [message] = capped.output
    assert message["attachments"][0]["content"] is None
    assert message["attachments"][0]["skipped"] == "larger than max_attachment_bytes (100)"


async def test_a_big_attachment_is_read_whole(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    from email.message import EmailMessage

    data = bytes(range(256)) * 2000  # 512 KB: decoded off the event loop
    message = EmailMessage()
    message["Subject"] = "big"
    message.set_content("see attachment")
    message.add_attachment(data, maintype="application", subtype="zip", filename="big.zip")
    imap_server.deliver(mailbox[0], message.as_bytes())
    result = await _receive(imap_server, certificate, mailbox, include_attachments=True)
    [read] = result.output
    [attachment] = read["attachments"]
    assert attachment["size"] == len(data)
    assert base64.b64decode(attachment["content"]) == data


async def test_filters_and_limit_pick_the_newest_matching_messages(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    user = mailbox[0]
    imap_server.deliver(user, _plain("alpha one", "ann@example.test", "01 Feb 2024"))
    imap_server.deliver(user, _plain("beta", "bob@example.test", "05 Feb 2024"))
    imap_server.deliver(user, _plain("alpha two", "ann@example.test", "10 Feb 2024"))
    imap_server.deliver(user, _plain("alpha three", "ann@example.test", "20 Feb 2024"))
    imap_server.deliver(user, LATIN1)

    async def subjects(**params: Any) -> list[str]:
        result = await _receive(imap_server, certificate, mailbox, **params)
        return [m["subject"] for m in result.output]

    assert await subjects(subject="alpha") == ["alpha one", "alpha two", "alpha three"]
    assert await subjects(subject="alpha", limit=2) == ["alpha two", "alpha three"]
    assert await subjects(**{"from": "bob@example.test"}) == ["beta"]
    assert await subjects(to="nobody@example.test") == []
    # Non-ASCII search text (sent as UTF-8) matches the decoded ISO-8859-1 subject.
    assert await subjects(subject="Grüße") == ["Grüße aus Köln"]
    # SINCE/BEFORE compare the server's arrival date: everything arrived today.
    assert len(await subjects(since="2020-01-01")) == 5
    assert await subjects(before="2020-01-01") == []


async def test_the_output_stops_before_the_message_that_would_take_it_over_its_cap(
    imap_server: Dovecot,
    certificate: Certificate,
    mailbox: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for n in range(4):
        imap_server.deliver(mailbox[0], _plain(f"m{n}") + b"x" * 3000 + b"\r\n")
    # Room for two messages of about 4 KB of output each.
    monkeypatch.setattr(receive, "MAX_OUTPUT_BYTES", 9_000)
    events: list[NodeEvent] = []
    result = await _receive(
        imap_server, certificate, mailbox, mark_as_read=True, observer=events.append
    )
    assert [m["subject"] for m in result.output] == ["m0", "m1"]
    [warning] = [e for e in events if e.kind == "log"]
    assert warning.level == "warning"
    assert warning.message == (
        "email.receive: 2 more matching messages not returned: the output would be over "
        "9000 bytes (lower limit or max_attachment_bytes)"
    )
    # What was not returned was not marked as read either.
    left = await _receive(imap_server, certificate, mailbox, unseen=True)
    assert [m["subject"] for m in left.output] == ["m2", "m3"]


async def test_a_message_over_the_size_cap_comes_with_its_headers_only(
    imap_server: Dovecot,
    certificate: Certificate,
    mailbox: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    imap_server.deliver(mailbox[0], MULTIPART)
    imap_server.deliver(mailbox[0], _plain("small"))
    monkeypatch.setattr(receive, "MAX_MESSAGE_BYTES", 600)
    result = await _receive(imap_server, certificate, mailbox, include_attachments=True)
    big, small = result.output
    assert big["subject"] == "Report ✓"
    assert big["truncated"] is True
    assert big["size"] > 600
    assert (big["text"], big["html"], big["attachments"]) == (None, None, [])
    assert small["text"] == "body of small\n"
    assert "truncated" not in small


async def test_mark_as_read_sets_seen_only_on_the_messages_returned(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    for n in range(3):
        imap_server.deliver(mailbox[0], _plain(f"m{n}"))
    peeked = await _receive(imap_server, certificate, mailbox, unseen=True)
    assert len(peeked.output) == 3
    read = await _receive(
        imap_server, certificate, mailbox, unseen=True, mark_as_read=True, limit=2
    )
    assert [m["subject"] for m in read.output] == ["m1", "m2"]
    assert all(m["flags"] == ["\\Seen"] for m in read.output)
    left = await _receive(imap_server, certificate, mailbox, unseen=True)
    assert [m["subject"] for m in left.output] == ["m0"]


@pytest.mark.parametrize("tls", ["starttls", "none"])
async def test_receive_over_starttls_or_no_tls(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str], tls: str
) -> None:
    imap_server.deliver(mailbox[0], _plain("over " + tls))
    result = await _receive(imap_server, certificate, mailbox, tls=tls)
    assert [m["subject"] for m in result.output] == ["over " + tls]


async def test_a_folder_with_a_non_ascii_name_is_read(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    imap_server.deliver(mailbox[0], _plain("draft"), folder="Entwürfe")
    imap_server.deliver(mailbox[0], _plain("in the inbox"))
    result = await _receive(imap_server, certificate, mailbox, folder="Entwürfe")
    assert [m["subject"] for m in result.output] == ["draft"]


async def test_a_missing_folder_is_named_in_the_error(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    result = await _receive(imap_server, certificate, mailbox, folder="Archiv", error_edge=True)
    assert result.output["failed"].startswith(
        f"IMAP server 127.0.0.1:{imap_server.imaps_port}: cannot open folder 'Archiv': "
        "Mailbox doesn't exist"
    )


async def test_a_wrong_password_is_an_authentication_failure(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    result = await _receive(
        imap_server, certificate, (mailbox[0], "wrong-password"), error_edge=True
    )
    assert result.output["failed"].startswith(
        f"IMAP server 127.0.0.1:{imap_server.imaps_port}: authentication failed:"
    )
    assert result.output["type"] == "EmailError"


async def test_a_password_with_a_line_break_is_refused_before_it_is_sent(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    result = await _receive(
        imap_server, certificate, (mailbox[0], "pw\r\nA1 LOGOUT"), error_edge=True
    )
    assert result.output["failed"] == (
        f"IMAP server 127.0.0.1:{imap_server.imaps_port}: login: a value holds a line break or NUL"
    )


async def test_a_closed_port_is_a_clear_connection_error(
    certificate: Certificate, imap_server: Dovecot, mailbox: tuple[str, str]
) -> None:
    with silent_server() as silent:
        port = silent.port  # closed on leaving: nothing listens there any more
    params = {**imap_params(imap_server, certificate, mailbox[0]), "imap_port": port}
    result = await run_node(
        "email.receive", params, secrets={"IMAP_PASSWORD": "x"}, error_edge=True
    )
    assert result.output["failed"] == (
        f"could not connect to IMAP server 127.0.0.1:{port}: connection refused"
    )


async def test_an_untrusted_certificate_is_refused(
    imap_server: Dovecot, certificate: Certificate, mailbox: tuple[str, str]
) -> None:
    params = imap_params(imap_server, certificate, mailbox[0])
    del params["ca_cert"]
    result = await run_node(
        "email.receive", params, secrets={"IMAP_PASSWORD": mailbox[1]}, error_edge=True
    )
    assert result.output["failed"].startswith(
        f"IMAP server 127.0.0.1:{imap_server.imaps_port}: TLS certificate not trusted"
    )


async def test_a_server_that_never_greets_times_out(certificate: Certificate) -> None:
    with silent_server() as silent:
        port = silent.port
        params = {
            "imap_host": "127.0.0.1",
            "imap_port": port,
            "tls": "none",
            "username": "u",
            "password": "p",
            "timeout": "300ms",
        }
        result = await run_node("email.receive", params, error_edge=True)
    assert result.output["failed"] == (
        f"IMAP server 127.0.0.1:{port}: no answer to connect within 0.3s"
    )


async def test_cancelling_the_run_closes_the_imap_connection(certificate: Certificate) -> None:
    with silent_server() as silent:
        params = {
            "imap_host": "127.0.0.1",
            "imap_port": silent.port,
            "tls": "none",
            "username": "u",
            "password": "p",
        }
        run = asyncio.create_task(run_node("email.receive", params))
        # Connected, and waiting for the greeting.
        assert await asyncio.to_thread(silent.connected.wait, HANG_GUARD)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert await asyncio.to_thread(silent.gone.wait, HANG_GUARD)
