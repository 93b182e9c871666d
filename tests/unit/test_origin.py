"""veille.crawler.origin: the outlet's origin and the public-address rule, without a network."""

from __future__ import annotations

import pytest

from veille.crawler.origin import AddressCheck, Origin, names_private_address, non_public


def test_only_the_outlets_scheme_host_and_port_are_its_origin() -> None:
    o = Origin.of("https://www.bladi.net/")
    assert o.adopt("https://www.bladi.net/a,1.html") == ("https://www.bladi.net/a,1.html", "")
    assert o.adopt("https://bladi.net:443/a") == ("https://bladi.net:443/a", "")  # www. or not
    assert o.adopt("http://www.bladi.net/a?x=1") == ("https://www.bladi.net/a?x=1", "")  # upgraded
    assert o.adopt("https://www.bladi.net:8443/admin") == (None, "other port 8443")
    assert o.adopt("http://www.bladi.net:8080/a") == (None, "other scheme http")
    assert o.adopt("https://fr.bladi.net/a") == (None, "other host fr.bladi.net")
    assert o.adopt("https://bladi.net.evil.example/a") == (None, "other host bladi.net.evil.example")
    replay = Origin.of("http://127.0.0.1:8001/")
    assert replay.adopt("http://127.0.0.1:8001/x")[0] == "http://127.0.0.1:8001/x"
    assert replay.adopt("http://127.0.0.1:18099/admin") == (None, "other port 18099")
    assert replay.adopt("https://127.0.0.1:8001/x") == (None, "other scheme https")


@pytest.mark.parametrize(("ip", "private"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.169.254", True), ("0.0.0.0", True), ("100.64.0.1", True), ("::1", True),
    ("fe80::1", True), ("fd00::1", True), ("::ffff:127.0.0.1", True), ("224.0.0.1", True),
    ("8.8.8.8", False), ("2a00:1450:4007:80e::2004", False), ("41.248.0.1", False),
])
def test_non_public_addresses(ip: str, private: bool) -> None:
    assert non_public(ip) is private


def test_an_outlet_url_that_names_a_private_address_is_exempt() -> None:
    assert names_private_address("http://127.0.0.1:8001/")
    assert names_private_address("http://[::1]:8001/")
    assert names_private_address("http://localhost:8001/")
    assert not names_private_address("https://www.bladi.net/")
    assert not names_private_address("http://8.8.8.8/")


def test_address_check_refuses_private_literals_and_caches_per_host() -> None:
    check = AddressCheck()
    assert check.cached("10.0.0.5") is None
    verdict = check.check("10.0.0.5")
    assert verdict.refused == "10.0.0.5 resolves to a non-public address (10.0.0.5)"
    assert check.cached("10.0.0.5") is verdict
    assert check.check("8.8.8.8").refused is None and check.check("8.8.8.8").address == "8.8.8.8"
