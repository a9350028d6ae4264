"""The SSRF guard refuses every forbidden address class, also behind a host name."""

from __future__ import annotations

import pytest

from webhooks import ssrf

NONE = ssrf.Allowlist.parse([])
LOOPBACK_ONLY = ssrf.Allowlist.parse(["127.0.0.1"])

FORBIDDEN = [
    ("https://127.0.0.1/", "loopback"),
    ("https://127.8.9.10/", "loopback"),
    ("https://[::1]/", "loopback"),
    ("https://10.1.2.3/", "private"),
    ("https://172.16.5.4/", "private"),
    ("https://192.168.0.1/", "private"),
    ("https://[fc00::1]/", "private"),
    ("https://169.254.10.20/", "link-local"),
    ("https://[fe80::1]/", "link-local"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://100.100.100.200/", "metadata"),
    ("https://[fd00:ec2::254]/", "metadata"),
    ("https://224.0.0.1/", "multicast"),
    ("https://[ff02::1]/", "multicast"),
    ("https://240.0.0.1/", "reserved"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://100.64.0.1/", "shared"),
    ("https://[::ffff:127.0.0.1]/", "loopback"),
    ("https://[::ffff:10.0.0.1]/", "private"),
]


@pytest.mark.parametrize(("url", "klass"), FORBIDDEN)
def test_each_forbidden_address_class_is_refused(url, klass):
    with pytest.raises(ssrf.UnsafeDestination, match=klass):
        ssrf.check_url(url, NONE)


def test_a_name_resolving_to_loopback_is_refused_unless_allowlisted():
    # "localhost" resolves (through the real resolver) to 127.0.0.1 / ::1.
    with pytest.raises(ssrf.UnsafeDestination, match="loopback"):
        ssrf.check_url("https://localhost:8443/hook", NONE)
    # The address allowlist does not cover ::1, which localhost may also resolve to.
    allowed = ssrf.Allowlist.parse(["localhost"])
    assert ssrf.check_url("https://localhost:8443/hook", allowed).address in {"127.0.0.1", "::1"}


def test_http_only_for_allowlisted_hosts():
    with pytest.raises(ssrf.UnsafeDestination, match="https"):
        ssrf.check_url("http://93.184.216.34/hook", NONE)
    with pytest.raises(ssrf.UnsafeDestination, match="https"):
        ssrf.check_url("http://localhost:9/hook", LOOPBACK_ONLY)  # a name, not the address
    target = ssrf.check_url("http://127.0.0.1:9/hook?x=1", LOOPBACK_ONLY)
    assert (target.scheme, target.address, target.port, target.path) == (
        "http",
        "127.0.0.1",
        9,
        "/hook?x=1",
    )


def test_public_addresses_pass_and_keep_the_checked_address():
    target = ssrf.check_url("https://93.184.216.34/in", NONE)
    assert target.address == "93.184.216.34"
    assert target.host == "93.184.216.34"


@pytest.mark.parametrize(
    "url",
    ["ftp://93.184.216.34/", "https:///nohost", "https://user:pw@93.184.216.34/", "not a url"],
)
def test_malformed_or_other_schemes_are_refused(url):
    with pytest.raises(ssrf.UnsafeDestination):
        ssrf.check_url(url, NONE)


def test_an_unresolvable_name_is_refused():
    with pytest.raises(ssrf.UnsafeDestination, match="does not resolve"):
        ssrf.check_url("https://no-such-host.invalid/hook", NONE)


def test_networks_in_the_allowlist():
    allow = ssrf.Allowlist.parse(["10.20.0.0/16"])
    assert ssrf.check_url("https://10.20.3.4/", allow).address == "10.20.3.4"
    with pytest.raises(ssrf.UnsafeDestination, match="private"):
        ssrf.check_url("https://10.21.3.4/", allow)


def test_no_redirect_is_followed_and_the_answer_is_capped():
    from tests.webhooks.receiver import receiver_server

    with receiver_server() as receiver:
        receiver.script = [302]
        target = ssrf.check_url(receiver.url, LOOPBACK_ONLY)
        answer = ssrf.post(target, b"{}", {}, cap=5)
        assert answer.status == 302
        assert len(answer.body) == 5
        assert len(receiver.requests) == 1  # nothing followed the 302
