"""Where webhooks may go (notifications/policy.py): schemes, metadata endpoints, non-public addresses, the
allow-list, and the setting's default by environment."""

from __future__ import annotations

import ipaddress

import pytest

from release_svc.config import Settings
from release_svc.notifications.policy import (
    NotifyPolicy,
    UnsafeUrl,
    address_problem,
    check_address,
    check_host,
    parse,
)

STRICT = NotifyPolicy.build(allow_private=False, allowed=[])
LOCAL = NotifyPolicy.build(allow_private=True, allowed=[])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://hooks.example.com/x", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://hooks.example.com:70/_x", "scheme 'gopher'"),
        ("javascript:alert(1)", "scheme 'javascript'"),
        ("hooks.example.com/x", r"scheme '\(none\)'"),
        ("http:///no-host", "no host"),
        ("https://user:secret@hooks.example.com/x", "credentials"),
        ("http://hooks.example.com:99999/x", "not a valid URL"),
    ],
)
def test_only_http_and_https_urls_with_a_host_and_no_credentials(url: str, why: str) -> None:
    with pytest.raises(UnsafeUrl, match=why):
        parse(url)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.10.20", "link-local"),
        ("fe80::1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("100.64.0.1", "non-public"),  # shared address space (CGNAT)
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test, not a bind
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_non_public_addresses_are_named(address: str, problem: str) -> None:
    found = address_problem(ipaddress.ip_address(address))
    assert found is not None and problem in found


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None
    check_address(parse("https://hooks.example.com/x"), ipaddress.ip_address(address), STRICT)


def test_strict_policy_refuses_private_literals_and_resolved_addresses() -> None:
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_host(parse("http://127.0.0.1:8080/hook"), STRICT)
    with pytest.raises(UnsafeUrl, match="loopback"):
        check_host(parse("http://[::1]/hook"), STRICT)
    target = parse("https://hooks.example.com/x")
    check_host(target, STRICT)  # a name: its addresses decide
    with pytest.raises(UnsafeUrl, match=r"hooks\.example\.com \(10\.1\.2\.3\) is a private address"):
        check_address(target, ipaddress.ip_address("10.1.2.3"), STRICT)


def test_metadata_endpoints_are_refused_even_where_private_addresses_are_allowed() -> None:
    check_host(parse("http://127.0.0.1:8080/hook"), LOCAL)
    check_address(parse("http://receiver.local/x"), ipaddress.ip_address("10.1.2.3"), LOCAL)
    with pytest.raises(UnsafeUrl, match="metadata"):
        check_host(parse("http://169.254.169.254/latest/meta-data/"), LOCAL)
    with pytest.raises(UnsafeUrl, match="metadata"):
        check_host(parse("http://metadata.google.internal/computeMetadata/v1/"), LOCAL)
    with pytest.raises(UnsafeUrl, match="metadata"):
        check_address(parse("http://sneaky.example/x"), ipaddress.ip_address("169.254.169.254"), LOCAL)


def test_allow_list_trusts_named_hosts_and_networks() -> None:
    allowed = NotifyPolicy.build(False, ["Hooks.Internal.", "10.20.0.0/16", " ", "192.168.7.7"])
    assert allowed.allowed_hosts == {"hooks.internal"}
    check_address(parse("http://hooks.internal/x"), ipaddress.ip_address("10.9.9.9"), allowed)
    check_address(parse("http://relay.example/x"), ipaddress.ip_address("10.20.1.2"), allowed)
    check_host(parse("http://192.168.7.7/x"), allowed)
    with pytest.raises(UnsafeUrl, match="private"):
        check_address(parse("http://relay.example/x"), ipaddress.ip_address("10.21.1.2"), allowed)


def test_the_vetted_address_is_the_one_connected_to() -> None:
    target = parse("https://hooks.example.com:8443/a/b?x=1")
    assert target.pinned(ipaddress.ip_address("93.184.216.34")) == "https://93.184.216.34:8443/a/b?x=1"
    assert target.pinned(ipaddress.ip_address("2606:4700::1")) == "https://[2606:4700::1]:8443/a/b?x=1"
    assert target.host_header == "hooks.example.com:8443"
    assert parse("https://hooks.example.com/x").host_header == "hooks.example.com"
    assert parse("http://[2606:4700::1]:81/").host_header == "[2606:4700::1]:81"


@pytest.mark.parametrize(
    ("env", "setting", "allowed"),
    [
        ("development", None, True),
        ("test", None, True),
        ("staging", None, False),
        ("production", None, False),
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_private_destinations_by_default_only_in_development_and_test(
    env: str, setting: bool | None, allowed: bool
) -> None:
    settings = Settings(
        env=env,
        jwt_secret="a-real-secret-of-enough-length-for-the-check",
        database_url="postgresql://u:p@db/greenzone",
        kafka_bootstrap="kafka:9092",
        notify_allow_private=setting,
        notify_allowed_hosts="hooks.internal, 10.0.0.0/8",
    )
    assert settings.notify_private_allowed is allowed
    assert settings.notify_allowed_hosts == ["hooks.internal", "10.0.0.0/8"]
