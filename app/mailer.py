"""SMTP delivery of one message: plain, STARTTLS or implicit TLS, optional login.

The password is read from the environment variable named by `smtp.password_env`, never
from the config file. Every failure is raised as `MailerError` with one line that names
the server and says what went wrong ("SMTP localhost:2525: connection refused").

`smtp.timeout` bounds each socket operation only: a server that trickles a byte at a
time would hold a send for ever. `smtp.deadline` bounds the whole conversation: when it
passes, a watchdog thread shuts the connection down, which wakes the blocked read or
write, and the send fails with one line. A send cut after the message's last line went
out fails with `MailerError.unconfirmed` set: the server may have accepted it.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from typing import Any

from veille.pipeline.config import SmtpConfig

log = logging.getLogger(__name__)


class MailerError(Exception):
    """Sending failed; the message is one line, worded for the user.

    `unconfirmed`: the end of the message was sent but its reply never came, so the
    server may have accepted it (the caller decides whether that counts as delivered).
    """

    def __init__(self, message: str, *, unconfirmed: bool = False) -> None:
        super().__init__(message)
        self.unconfirmed = unconfirmed


class _Client(smtplib.SMTP):
    """smtplib's client with a hook run just before the line that ends the message.

    Until that line (".") is sent the server cannot have accepted the message; once it
    is, only its reply tells. The hook lets the caller record the handover first, so a
    process killed while it waits for the reply leaves a record of what may be delivered.
    """

    before_end: Callable[[], None] | None = None
    ended = False  # the final "." was written
    replied = False  # and the server answered it

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")  # type: ignore[attr-defined]
        body = _LEADING_DOT.sub(b"..", msg)
        self.send(body if body.endswith(b"\r\n") else body + b"\r\n")
        if self.before_end is not None:
            self.before_end()
        self.send(b".\r\n")
        self.ended = True
        reply = self.getreply()
        self.replied = True
        return reply


    def getreply(self) -> tuple[int, bytes]:
        """smtplib's reader, except that a line cut before its end is no reply: smtplib
        reads a last line "250" with no line end (the connection cut right after the code,
        by our deadline or a dying server) as a whole "250" reply, i.e. as accepted."""
        if self.file is None and self.sock is not None:
            self.file = self.sock.makefile("rb")
        source = self.file
        if source is not None:
            self.file = _WholeLines(source)
        try:
            return super().getreply()
        finally:
            if self.file is not None:  # smtplib's close() sets it to None
                self.file = source


class _WholeLines:
    """A reply stream whose end-of-file in mid-line reads as end-of-file."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.source.readline(size)
        if line and not line.endswith(b"\n") and (size < 0 or len(line) < size):
            return b""
        return line

    def close(self) -> None:
        self.source.close()


class _SSLClient(_Client, smtplib.SMTP_SSL):
    """`_Client` over implicit TLS."""


_LEADING_DOT = re.compile(rb"(?m)^\.")


class _Deadline:
    """Cuts the client's connection once `seconds` have passed, until `done`.

    Shutting the socket down (not closing it: the sending thread still owns it) makes a
    blocked read return end-of-file at once, plain or TLS. Repeated until the send ends,
    so a socket opened after the deadline is cut too.
    """

    def __init__(self, client: smtplib.SMTP, seconds: float) -> None:
        self.client, self.seconds = client, seconds
        self.expired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="smtp-deadline", daemon=True)

    def __enter__(self) -> _Deadline:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        if self._done.wait(self.seconds):
            return
        self.expired = True
        while True:
            sock = getattr(self.client, "sock", None)
            if sock is not None:
                try:
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:  # closed meanwhile, or never connected
                    pass
            if self._done.wait(0.05):
                return


def server_name(smtp: SmtpConfig) -> str:
    return f"SMTP {smtp.host}:{smtp.port}"


def tls_context(smtp: SmtpConfig) -> ssl.SSLContext:
    """A client TLS context: the system CAs (or `smtp.ca_file`), or no checks if `verify` is off."""
    try:
        ctx = ssl.create_default_context(cafile=smtp.ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise MailerError(
            f"{server_name(smtp)}: cannot load smtp.ca_file {smtp.ca_file!r} ({_reason(exc)})"
        ) from None
    if not smtp.verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _password(smtp: SmtpConfig, environ: Mapping[str, str]) -> str:
    value = environ.get(smtp.password_env)
    if not value:
        raise MailerError(
            f"{server_name(smtp)}: smtp.username is set but the environment variable "
            f"{smtp.password_env} (smtp.password_env) is empty or not set"
        )
    return value


def send_message(
    msg: EmailMessage,
    smtp: SmtpConfig,
    *,
    environ: Mapping[str, str] | None = None,
    before_end: Callable[[], None] | None = None,
) -> dict[str, tuple[int, bytes]]:
    """Deliver `msg` to its From/To through the configured server.

    Args:
        msg: a complete message with From and To headers.
        smtp: server, port, security (none | starttls | ssl), login, timeout and deadline.
        environ: where the password variable is looked up (default: os.environ).
        before_end: called just before the message's last line is sent (see `_Client`);
            what it raises aborts the send, and nothing was delivered.

    Returns:
        The recipients the server refused while accepting the others (usually empty).

    Raises:
        MailerError: nothing was accepted (or, with `unconfirmed`, maybe it was); the
            message says why, on one line.
    """
    env = os.environ if environ is None else environ
    password = _password(smtp, env) if smtp.username else None
    ctx = tls_context(smtp) if smtp.security != "none" else None
    client = _SSLClient(timeout=smtp.timeout, context=ctx) if smtp.security == "ssl" else (
        _Client(timeout=smtp.timeout))
    client._host = smtp.host  # type: ignore[attr-defined]  # TLS checks the name connect() would set
    client.before_end = before_end
    stage = "connect"
    with _Deadline(client, smtp.deadline) as deadline:
        try:
            client.connect(smtp.host, smtp.port)
            stage = "greeting"
            client.ehlo()
            if smtp.security == "starttls":
                stage = "STARTTLS"
                if not client.has_extn("starttls"):
                    raise MailerError(f"{server_name(smtp)}: the server does not offer STARTTLS")
                client.starttls(context=ctx)
                client.ehlo()
            if smtp.username and password is not None:
                stage = "login"
                if smtp.security == "none":
                    log.warning("%s: logging in without TLS", server_name(smtp))
                client.login(smtp.username, password)
            stage = "send"
            refused = client.send_message(msg)
        except MailerError:
            _close(client)
            raise
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            _close(client)
            unconfirmed = client.ended and not client.replied
            if deadline.expired:
                what = ("no reply to the end of the message" if unconfirmed
                        else f"not done within smtp.deadline ({smtp.deadline:g}s), stopped during {stage}")
                if unconfirmed:
                    what += f" within smtp.deadline ({smtp.deadline:g}s)"
                raise MailerError(f"{server_name(smtp)}: {what}", unconfirmed=unconfirmed) from None
            raise MailerError(f"{server_name(smtp)}: {_describe(exc, stage, smtp)}",
                              unconfirmed=unconfirmed) from None
        except BaseException:
            _close(client)
            raise
        # The server has accepted the message: a failing QUIT must not turn it into a failure.
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            _close(client)
    for rcpt, (code, text) in refused.items():
        log.warning("%s: recipient %s refused (%s %s)", server_name(smtp), rcpt, code, _text(text))
    return refused


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        try:
            client.close()
        except OSError:
            pass


def _text(raw: bytes | str) -> str:
    s = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(s.split())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or exc.reason or "certificate rejected"
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc.strerror or exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _describe(exc: BaseException, stage: str, smtp: SmtpConfig) -> str:
    """One line for an smtplib/socket/ssl exception raised during `stage`."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({_reason(exc)})"
    if isinstance(exc, TimeoutError | socket.timeout) or (
        # smtplib reports a read timeout as a disconnection "...: timed out"
        isinstance(exc, smtplib.SMTPServerDisconnected) and "timed out" in str(exc)
    ):
        return f"timed out after {smtp.timeout:g}s ({stage})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = " (set smtp.ca_file to the server's CA)" if not smtp.ca_file else ""
        return f"TLS certificate verification failed: {_reason(exc)}{hint}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error during {stage}: {_reason(exc)}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused for {smtp.username!r} ({exc.smtp_code} {_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if stage == "login":
            return "the server does not offer AUTH (wrong port, or login needs security: starttls)"
        return f"not supported by the server: {_reason(exc)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [f"{r} ({c} {_text(t)})" for r, (c, t) in exc.recipients.items()]
        return "all recipients refused: " + ", ".join(parts)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused ({exc.smtp_code} {_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{stage} refused ({exc.smtp_code} {_text(exc.smtp_error)})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"the server closed the connection during {stage}"
    if isinstance(exc, ConnectionResetError):
        return f"connection reset during {stage}"
    return f"{stage} failed: {_reason(exc)}"
