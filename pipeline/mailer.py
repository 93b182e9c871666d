"""SMTP delivery of one message: plain, STARTTLS or implicit TLS, optional login.

The password is read from the environment variable named by `smtp.password_env`, never
from the config file. Every failure is raised as `MailerError` with one line that names
the server and says what went wrong ("SMTP localhost:2525: connection refused").
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

from pipeline.config import SmtpConfig

log = logging.getLogger(__name__)


class MailerError(Exception):
    """Sending failed; the message is one line, worded for the user."""


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
    msg: EmailMessage, smtp: SmtpConfig, *, environ: Mapping[str, str] | None = None
) -> dict[str, tuple[int, bytes]]:
    """Deliver `msg` to its From/To through the configured server.

    Args:
        msg: a complete message with From and To headers.
        smtp: server, port, security (none | starttls | ssl), login and timeout.
        environ: where the password variable is looked up (default: os.environ).

    Returns:
        The recipients the server refused while accepting the others (usually empty).

    Raises:
        MailerError: nothing was accepted; the message says why, on one line.
    """
    env = os.environ if environ is None else environ
    password = _password(smtp, env) if smtp.username else None
    ctx = tls_context(smtp) if smtp.security != "none" else None
    stage = "connect"
    client: smtplib.SMTP | None = None
    try:
        if smtp.security == "ssl":
            client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=ctx)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
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
        raise MailerError(f"{server_name(smtp)}: {_describe(exc, stage, smtp)}") from None
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
