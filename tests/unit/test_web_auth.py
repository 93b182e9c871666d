"""web_auth: who may read the web view (token by header, query or cookie; password by basic
auth), and that a wrong secret is refused whatever else the request carries."""

from __future__ import annotations

import base64

from veille.web_auth import (
    PASSWORD_ENV,
    TOKEN_ENV,
    Secrets,
    Verdict,
    authorize,
    cookie_value,
    refusal,
    secrets_from_env,
)

TOKEN, PASSWORD = "t0ken-for-the-team", "pässword"
BOTH = Secrets(TOKEN, PASSWORD)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_open_without_secrets() -> None:
    assert authorize(Secrets(), "", None, None) is Verdict.OK
    assert authorize(Secrets(), "Bearer wrong", "wrong", "junk") is Verdict.OK


def test_token_by_header_query_or_cookie() -> None:
    secrets = Secrets(token=TOKEN)
    assert authorize(secrets, f"Bearer {TOKEN}", None, None) is Verdict.OK
    assert authorize(secrets, f"bearer  {TOKEN} ", None, None) is Verdict.OK
    assert authorize(secrets, "", TOKEN, None) is Verdict.OK_SET_COOKIE
    assert authorize(secrets, "", None, cookie_value(TOKEN)) is Verdict.OK
    assert cookie_value(TOKEN) != TOKEN and TOKEN not in cookie_value(TOKEN)


def test_wrong_or_missing_token_is_refused() -> None:
    secrets = Secrets(token=TOKEN)
    assert authorize(secrets, "", None, None) is Verdict.REFUSED
    assert authorize(secrets, "Bearer nope", None, None) is Verdict.REFUSED
    assert authorize(secrets, "", None, TOKEN) is Verdict.REFUSED  # the cookie holds a digest
    # a wrong token in the query is refused even with a good cookie: the reader said so
    assert authorize(secrets, "", "nope", cookie_value(TOKEN)) is Verdict.REFUSED
    assert authorize(secrets, basic("x", TOKEN), None, None) is Verdict.REFUSED  # no password set


def test_password_by_basic_auth_with_any_user() -> None:
    secrets = Secrets(password=PASSWORD)
    assert authorize(secrets, basic("anyone", PASSWORD), None, None) is Verdict.OK
    assert authorize(secrets, basic("anyone", "wrong"), None, None) is Verdict.REFUSED
    assert authorize(secrets, "Basic !!not base64!!", None, None) is Verdict.REFUSED
    assert authorize(secrets, "", PASSWORD, None) is Verdict.REFUSED  # not a token
    assert authorize(BOTH, basic("a", PASSWORD), None, None) is Verdict.OK
    assert authorize(BOTH, f"Bearer {TOKEN}", None, None) is Verdict.OK


def test_refusal_is_one_line_naming_the_variables_never_the_secret() -> None:
    line, challenge = refusal(BOTH)
    assert line.count("\n") == 1 and TOKEN_ENV in line and PASSWORD_ENV in line
    assert TOKEN not in line and PASSWORD not in line
    assert challenge.startswith("Basic ")  # a browser asks for the password
    assert refusal(BOTH, token_given=True)[1].startswith("Bearer ")  # a wrong ?token= shows its line
    assert refusal(Secrets(token=TOKEN))[1].startswith("Bearer ")


def test_secrets_from_env_ignore_empty_values() -> None:
    assert secrets_from_env({TOKEN_ENV: "", PASSWORD_ENV: ""}).required is False
    assert secrets_from_env({TOKEN_ENV: TOKEN}) == Secrets(TOKEN, None)
