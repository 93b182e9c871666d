"""What stands in front of every page of `veille serve`: GET and HEAD only, the optional
token or password, and headers that keep a page from running or leaking anything.

A team shares the view with a token (`VEILLE_WEB_TOKEN`: `Authorization: Bearer TOKEN`,
or `?token=TOKEN` once, after which an HttpOnly cookie carries it) or a password
(`VEILLE_WEB_PASSWORD`, HTTP basic auth with any user name). Requests are logged without
their query string, which may carry the token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("veille.web")

TOKEN_ENV = "VEILLE_WEB_TOKEN"
PASSWORD_ENV = "VEILLE_WEB_PASSWORD"
COOKIE = "veille_token"
METHODS = ("GET", "HEAD")
HEADERS = [
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
     b"base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # an outlet's link never learns our address
    (b"x-frame-options", b"DENY"),
]


@dataclass(frozen=True)
class Secrets:
    token: str | None = None
    password: str | None = None

    @property
    def required(self) -> bool:
        return bool(self.token or self.password)


def secrets_from_env(environ: Mapping[str, str]) -> Secrets:
    """The token and password from the environment (unset or empty: none)."""
    return Secrets(environ.get(TOKEN_ENV) or None, environ.get(PASSWORD_ENV) or None)


class Verdict(Enum):
    OK = "ok"
    OK_SET_COOKIE = "ok, set the cookie"  # the token came in the query string
    REFUSED = "refused"


def cookie_value(token: str) -> str:
    """What the cookie carries: a digest of the token, not the token."""
    return hmac.new(token.encode(), b"veille web view cookie", hashlib.sha256).hexdigest()


def _same(given: str, wanted: str) -> bool:
    return hmac.compare_digest(given.encode(), wanted.encode())


def _basic_password(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


def authorize(secrets: Secrets, authorization: str, query_token: str | None,
              cookie: str | None) -> Verdict:
    """May this request read the view? A wrong token in the query is refused outright."""
    if not secrets.required:
        return Verdict.OK
    if secrets.token:
        if query_token is not None:
            return Verdict.OK_SET_COOKIE if _same(query_token, secrets.token) else Verdict.REFUSED
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and _same(value.strip(), secrets.token):
            return Verdict.OK
        if cookie is not None and _same(cookie, cookie_value(secrets.token)):
            return Verdict.OK
    if secrets.password:
        given = _basic_password(authorization)
        if given is not None and _same(given, secrets.password):
            return Verdict.OK
    return Verdict.REFUSED


def refusal(secrets: Secrets, token_given: bool = False) -> tuple[str, str]:
    """(the one line a refused reader sees, the WWW-Authenticate challenge).

    Basic (a browser then asks for the password) only when a password is set and the
    reader did not try a token: a wrong `?token=` shows its line, not a login box."""
    ways = []
    if secrets.token:
        ways.append(f"the token ({TOKEN_ENV}) as Authorization: Bearer or ?token=")
    if secrets.password:
        ways.append(f"the password ({PASSWORD_ENV}) by basic auth")
    basic = secrets.password and not token_given
    challenge = 'Basic realm="veille", charset="UTF-8"' if basic else 'Bearer realm="veille"'
    return f"veille: unauthorized: this view needs {' or '.join(ways)}\n", challenge


class Guard:
    """ASGI middleware: 405 for any method but GET/HEAD, 401 without the secret when one
    is set, security headers on every answer, one log line per request."""

    def __init__(self, app: ASGIApp, secrets: Secrets) -> None:
        self.app = app
        self.secrets = secrets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        method, path = request.method, request.url.path
        if method not in METHODS:
            await _plain(send, 405, f"veille: {method} not allowed: this view only reads (GET, HEAD)\n",
                         [(b"allow", b"GET, HEAD")])
            log.info("%s %s 405", method, path)
            return
        query_token = request.query_params.get("token")
        verdict = authorize(self.secrets, request.headers.get("authorization", ""),
                            query_token, request.cookies.get(COOKIE))
        if verdict is Verdict.REFUSED:
            line, challenge = refusal(self.secrets, query_token is not None)
            await _plain(send, 401, line, [(b"www-authenticate", challenge.encode())])
            log.warning("%s %s 401", method, path)
            return
        extra = list(HEADERS)
        if self.secrets.required:
            extra.append((b"cache-control", b"private, no-store"))
        if verdict is Verdict.OK_SET_COOKIE and self.secrets.token:
            extra.append((b"set-cookie", f"{COOKIE}={cookie_value(self.secrets.token)}; "
                                         "Path=/; HttpOnly; SameSite=Lax".encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
                log.info("%s %s %s", method, path, message["status"])
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _plain(send: Send, status: int, line: str, headers: list[tuple[bytes, bytes]]) -> None:
    body = line.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), *HEADERS, *headers]})
    await send({"type": "http.response.body", "body": body})
