"""app/mailer against real SMTP servers on 127.0.0.1: aiosmtpd (plain, STARTTLS with a
trustme certificate), and a scripted socket server for the endings aiosmtpd will not play
(no reply to the message's last line, a QUIT that is never answered).

What the digest relies on: the message arrives byte for byte (lines starting with a dot
included), the hook runs before the server can have accepted anything, refused recipients
are reported while the others get it, every failure is one line naming the server and
never the password, and a send cut after the last line is marked `unconfirmed`.
tests/integration/test_digest.py covers connection refused, timeouts, login and implicit TLS
through `send_digest`; test_digest_deadline.py covers `smtp.deadline`.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from tests.smtp_inbox import Inbox
from veille.mailer import MailerError, send_message
from veille.pipeline.config import SmtpConfig

TO = ["analyst@example.org", "press@example.org"]
BODY = ("Bonjour,\n.\n..deux points\n.point en tête de ligne\nFin.\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def message(to: list[str] = TO) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Veille <veille@example.org>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = "Veille — 3 stories"
    msg.set_content(BODY)
    return msg


def smtp(port: int, **settings: Any) -> SmtpConfig:
    return SmtpConfig.model_validate({"host": "127.0.0.1", "port": port, "timeout": 10, **settings})


def serve(inbox: Inbox, **options: Any) -> tuple[Controller, int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    return controller, port


@pytest.fixture()
def server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller, port = serve(inbox)
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture()
def tls_server(ca: trustme.CA) -> Iterator[tuple[Inbox, int]]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    inbox = Inbox()
    controller, port = serve(inbox, tls_context=ctx, require_starttls=True)
    try:
        yield inbox, port
    finally:
        controller.stop()


# --------------------------------------------------------------------------- delivery


def test_the_message_arrives_as_written_to_every_recipient(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    assert send_message(message(), smtp(port)) == {}
    (env,) = inbox.envelopes
    assert sorted(env.rcpt_tos) == TO and env.mail_from == "veille@example.org"
    (msg,) = inbox.messages
    assert msg["Subject"] == "Veille — 3 stories"
    assert msg.get_content().replace("\r\n", "\n") == BODY  # dot lines stuffed, then unstuffed


def test_the_hook_runs_before_the_server_can_have_accepted_anything(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    seen: list[int] = []
    send_message(message(), smtp(port), before_end=lambda: seen.append(len(inbox.envelopes)))
    assert seen == [0] and len(inbox.envelopes) == 1


def test_a_failing_hook_aborts_the_send_and_nothing_is_delivered(server: tuple[Inbox, int]) -> None:
    inbox, port = server

    class Refused(Exception):
        pass

    def refuse() -> None:
        raise Refused("the digest could not be recorded")

    with pytest.raises(Refused):
        send_message(message(), smtp(port), before_end=refuse)
    assert inbox.envelopes == []
    send_message(message(), smtp(port))  # the server is fine: the next send goes through
    assert len(inbox.envelopes) == 1


def test_refused_recipients_are_returned_while_the_others_get_it(caplog: pytest.LogCaptureFixture) -> None:
    inbox = Inbox(refuse_rcpt=("press@example.org",))
    controller, port = serve(inbox)
    try:
        with caplog.at_level(logging.WARNING, logger="veille.mailer"):
            refused = send_message(message(), smtp(port))
    finally:
        controller.stop()
    assert list(refused) == ["press@example.org"] and refused["press@example.org"][0] == 550
    assert inbox.envelopes[0].rcpt_tos == ["analyst@example.org"]
    assert any("recipient press@example.org refused (550" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("inbox", "said"), [
    (Inbox(refuse_rcpt=tuple(TO)), "all recipients refused: analyst@example.org (550 5.1.1 no such user "
                                    "here), press@example.org (550 5.1.1 no such user here)"),
    (Inbox(refuse_sender=True), "sender veille@example.org refused (553 5.7.1 sender not allowed here)"),
])
def test_a_refusal_of_everything_is_one_line(inbox: Inbox, said: str) -> None:
    controller, port = serve(inbox)
    try:
        with pytest.raises(MailerError) as err:
            send_message(message(), smtp(port))
    finally:
        controller.stop()
    assert str(err.value) == f"SMTP 127.0.0.1:{port}: {said}"
    assert not err.value.unconfirmed and inbox.envelopes == []


# --------------------------------------------------------------------------- security and login


def test_starttls_asked_of_a_server_that_does_not_offer_it(server: tuple[Inbox, int]) -> None:
    inbox, port = server
    with pytest.raises(MailerError) as err:
        send_message(message(), smtp(port, security="starttls"))
    assert str(err.value) == f"SMTP 127.0.0.1:{port}: the server does not offer STARTTLS"
    assert inbox.envelopes == []


def test_a_login_where_the_server_offers_none_says_what_to_change(
        server: tuple[Inbox, int], caplog: pytest.LogCaptureFixture) -> None:
    """aiosmtpd, like most servers, offers AUTH only after STARTTLS."""
    _, port = server
    with caplog.at_level(logging.WARNING, logger="veille.mailer"), pytest.raises(MailerError) as err:
        send_message(message(), smtp(port, username="veille", password_env="PW"),
                     environ={"PW": "s3cret-pass"})
    assert str(err.value) == (f"SMTP 127.0.0.1:{port}: the server does not offer AUTH "
                              "(wrong port, or login needs security: starttls)")
    assert "logging in without TLS" in caplog.text
    assert "s3cret-pass" not in str(err.value) + caplog.text


@pytest.mark.parametrize("environ", [{}, {"VEILLE_TEST_PW": ""}])
def test_a_login_without_its_password_is_refused_before_connecting(environ: dict[str, str]) -> None:
    port = free_port()  # nothing listens: a connection attempt would say "connection refused"
    with pytest.raises(MailerError) as err:
        send_message(message(), smtp(port, username="veille", password_env="VEILLE_TEST_PW"), environ=environ)
    assert str(err.value) == (f"SMTP 127.0.0.1:{port}: smtp.username is set but the environment variable "
                              "VEILLE_TEST_PW (smtp.password_env) is empty or not set")


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(MailerError) as err:
        send_message(message(), smtp(free_port(), security="starttls", ca_file=str(missing)))
    assert str(err.value).startswith("SMTP 127.0.0.1:")
    assert f"cannot load smtp.ca_file '{missing}' (No such file or directory)" in str(err.value)


def test_a_certificate_not_trusted_is_refused_unless_checks_are_off(tls_server: tuple[Inbox, int]) -> None:
    inbox, port = tls_server
    with pytest.raises(MailerError) as err:
        send_message(message(), smtp(port, security="starttls"))
    assert "TLS certificate verification failed" in str(err.value)
    assert str(err.value).endswith("(set smtp.ca_file to the server's CA)")
    assert inbox.envelopes == []
    send_message(message(), smtp(port, security="starttls", verify=False))
    assert len(inbox.envelopes) == 1


def test_a_certificate_signed_by_the_configured_ca_is_trusted(
        tls_server: tuple[Inbox, int], ca: trustme.CA, tmp_path: Path) -> None:
    inbox, port = tls_server
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    send_message(message(), smtp(port, security="starttls", ca_file=str(ca_file)))
    assert len(inbox.envelopes) == 1


# --------------------------------------------------------------------------- endings


class Scripted:
    """One SMTP conversation, answered line by line, ending as `ending` says:
    "no reply": the connection is closed once the message's last line arrived;
    "cut reply": the reply to it is cut after its code ("250", then the connection closes);
    "no quit": the message is accepted, then QUIT is met by closing the connection."""

    def __init__(self, ending: str) -> None:
        self.ending = ending
        self.got_end = threading.Event()
        self.done = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._sock.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._sock.close()
        self._thread.join(timeout=30)

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 scripted ESMTP\r\n")
            for line in lines:
                verb = line[:4].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-scripted\r\n250 8BITMIME\r\n")
                elif verb in (b"MAIL", b"RCPT"):
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    for body_line in lines:
                        if body_line == b".\r\n":
                            break
                    self.got_end.set()
                    if self.ending == "no reply":
                        break
                    if self.ending == "cut reply":
                        conn.sendall(b"250")
                        break
                    conn.sendall(b"250 accepted\r\n")
                elif verb == b"QUIT":
                    break  # closed without a word
        self.done.set()


@pytest.fixture()
def scripted(request: pytest.FixtureRequest) -> Iterator[Scripted]:
    srv = Scripted(request.param)
    yield srv
    srv.close()


@pytest.mark.parametrize("scripted", ["no reply"], indirect=True)
def test_no_reply_to_the_last_line_is_a_failure_that_may_have_been_delivered(scripted: Scripted) -> None:
    with pytest.raises(MailerError) as err:
        send_message(message(), smtp(scripted.port))
    assert scripted.got_end.is_set()
    assert err.value.unconfirmed
    assert str(err.value) == f"SMTP 127.0.0.1:{scripted.port}: the server closed the connection during send"


@pytest.mark.parametrize("scripted", ["cut reply"], indirect=True)
def test_a_reply_cut_after_its_code_is_no_reply(scripted: Scripted) -> None:
    """smtplib takes a last line "250" without its end for a whole "250" reply: a
    connection cut there (a deadline, a dying server) must not count as accepted."""
    with pytest.raises(MailerError) as err:
        send_message(message(), smtp(scripted.port))
    assert scripted.got_end.is_set()
    assert err.value.unconfirmed
    assert "closed the connection" in str(err.value)


@pytest.mark.parametrize("scripted", ["no quit"], indirect=True)
def test_a_quit_never_answered_does_not_undo_an_accepted_message(scripted: Scripted) -> None:
    assert send_message(message(), smtp(scripted.port)) == {}
    assert scripted.got_end.is_set()
