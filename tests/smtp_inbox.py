"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, keeping what it accepts."""

from __future__ import annotations

import email
import email.policy
import socket
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import Envelope


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """aiosmtpd handler: keeps accepted messages; refuses the senders and recipients named."""

    def __init__(self, refuse_rcpt: tuple[str, ...] = (), refuse_sender: bool = False) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse_rcpt, self.refuse_sender = refuse_rcpt, refuse_sender

    async def handle_MAIL(self, server: Any, session: Any, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if self.refuse_sender:
            return "553 5.7.1 sender not allowed here"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse_rcpt:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[EmailMessage]:
        out = []
        for env in self.envelopes:
            raw = env.original_content or env.content
            assert isinstance(raw, bytes)
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out
