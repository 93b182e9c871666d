"""Which URLs an outlet may make us fetch: its own origin, on public addresses.

Outlets are untrusted input. A feed item, sitemap entry, section link or redirect can
point at the outlet's host on another port (`http://outlet:18099/admin`), or the
outlet's name can resolve to the operator's own network. So a target is fetched only

- on the outlet's **origin**: the scheme, host and port of its configured URL (`www.`
  or not: both spellings are the outlet's; other subdomains are other sites); an
  `http://` link to the same host of an `https://` outlet is upgraded, not refused;
- at a **public address**: a host whose name resolves to a private, loopback,
  link-local or otherwise non-global address is refused, unless the outlet's own URL
  names such an address itself (the test replay serves on 127.0.0.1).

Names are resolved once per host and crawl (`AddressCheck`, cached); the checked address
is handed to Scrapy's DNS cache, so the download connects to the address that was checked.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _bare(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else DEFAULT_PORTS.get(scheme, -1)


@dataclass(frozen=True)
class Origin:
    """Scheme, host (without `www.`) and port of an outlet's configured URL."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        return cls(scheme, _bare(parts.hostname or ""), _port(scheme, parts.port))

    def adopt(self, url: str) -> tuple[str | None, str]:
        """`(url to fetch, "")` when `url` is on this origin, else `(None, why not)`.

        An `http://` URL on the same host and default port of an `https://` outlet is
        returned as `https://` (the site would redirect there).
        """
        try:
            parts = urlsplit(url)
            port = _port(parts.scheme.lower(), parts.port)
        except ValueError:
            return None, "malformed URL"
        scheme, host = parts.scheme.lower(), _bare(parts.hostname or "")
        if host != self.host:
            return None, f"other host {parts.hostname}"
        if (scheme, port, self.scheme, self.port) == ("http", 80, "https", 443):
            return urlunsplit(("https", parts.hostname or "", parts.path, parts.query, "")), ""
        if scheme != self.scheme:
            return None, f"other scheme {scheme}"
        if port != self.port:
            return None, f"other port {port}"
        return url, ""


def non_public(ip: str) -> bool:
    """True for private, loopback, link-local, reserved... anything not globally routable."""
    addr: IPAddress = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 (Python < 3.13 says global)
    return not addr.is_global or addr.is_multicast


def literal_address(host: str) -> str | None:
    """The host as an IP address string if it is one (`[::1]` → `::1`), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def names_private_address(url: str) -> bool:
    """Does this (outlet) URL itself name a non-public address (`127.0.0.1`, `localhost`)?"""
    host = (urlsplit(url).hostname or "").lower()
    ip = literal_address(host)
    return host == "localhost" or host.endswith(".localhost") or (ip is not None and non_public(ip))


@dataclass(frozen=True)
class Verdict:
    """What a host resolved to: the address to connect to, or why it is refused."""

    address: str | None  # first IPv4 address (what Scrapy's resolver would use), if any
    refused: str | None  # e.g. "resolves to a private address (10.0.0.5)"


class AddressCheck:
    """Resolve each host once and refuse those with a non-public address (a per-crawl cache)."""

    def __init__(self) -> None:
        self._cache: dict[str, Verdict] = {}

    def cached(self, host: str) -> Verdict | None:
        return self._cache.get(host.lower())

    def check(self, host: str) -> Verdict:
        """Blocking (a DNS lookup on a cache miss): call it from a thread."""
        host = host.lower()
        if host not in self._cache:
            self._cache[host] = self._resolve(host)
        return self._cache[host]

    @staticmethod
    def _resolve(host: str) -> Verdict:
        ip = literal_address(host)
        if ip is not None:
            addresses = [ip]
        else:
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except (OSError, UnicodeError):
                return Verdict(None, None)  # let the download report the DNS failure
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        bad = [a for a in addresses if non_public(a)]
        if bad:
            return Verdict(None, f"{host} resolves to a non-public address ({bad[0]})")
        ipv4 = next((a for a in addresses if ":" not in a), None)
        return Verdict(ipv4, None)
