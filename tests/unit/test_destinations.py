"""Where webhooks may go: the address rules, every spelling of a host, the allow-list."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from shouhou.services import destinations
from shouhou.services.destinations import (
    AllowList,
    DestinationRefused,
    address_problem,
    checked_address,
    numeric_host,
    registration_problem,
)

PUBLIC = "93.184.216.34"
NOBODY = AllowList()


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """A resolver of our own: these names, nothing else (no test asks the real DNS)."""
    names = {
        "public.example": [PUBLIC],
        "localhost": ["127.0.0.1", "::1"],
        "internal.example": [PUBLIC, "10.1.2.3"],  # one bad address is enough to refuse
        "metadata.example": ["169.254.169.254"],
    }

    def resolve(host: str, port: int) -> list[destinations.IPAddress]:
        if host in names:
            return [ipaddress.ip_address(a) for a in names[host]]
        literal = numeric_host(host)
        if literal is not None:
            return [literal]
        raise OSError(f"{host}: Name or service not known")

    monkeypatch.setattr(destinations, "resolve", resolve)
    return names


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("fc00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),  # reserved, and counted private by ipaddress first
        ("255.255.255.255", "private"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 around 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo around 127.0.0.1
        ("8.8.8.8", None),
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_an_address_is_judged_by_what_it_reaches(address: str, problem: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://2130706433/hooks",  # decimal
        "http://0x7f000001/hooks",  # hex
        "http://0x7f.1/hooks",  # hex, short
        "http://0177.0.0.1/",  # octal: httpx refuses it as an address; refused either way
        "http://017700000001/",
        "http://127.1/hooks",  # short form
        "http://127.0.1/hooks",
        "http://0/hooks",  # 0.0.0.0
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://[::ffff:7f00:1]/hooks",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/hooks",
        "http://[fe80::1%25eth0]/hooks",  # a zone id
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/hooks",
        "http://localhost:8000/hooks",  # resolves to the loopback
        "http://LOCALHOST/hooks",
        "http://internal.example/hooks",  # one address of several is private
        "http://metadata.example/hooks",
        "http://good.com\\@127.0.0.1/",  # backslash: httpx reads 127.0.0.1, a browser good.com
        "http://good.com\\.127.0.0.1/",
        "http://public.example\r\nX: y/",  # control characters
        "http://public.example\t/",
        "http://public.example\x00/",
        "http://public.example@127.0.0.1/",  # userinfo
        "http://user:pass@public.example/",
        "http://127.0.0.1%2f@public.example/",
        "http://public.example%2e/",
        "ftp://public.example/",
        "gopher://127.0.0.1:6379/_",
        "file:///etc/passwd",
        "http:///hooks",
    ],
)
def test_a_url_that_is_not_a_public_destination_is_refused(url: str) -> None:
    assert registration_problem(url, NOBODY) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://public.example/hooks",
        "HTTPS://PUBLIC.EXAMPLE/hooks",  # schemes and hosts are case-insensitive
        "HtTp://public.example:8443/hooks?x=1",
        f"http://{PUBLIC}/hooks",
        "http://[2606:4700:4700::1111]/hooks",
        "https://not-yet-in-dns.example/hooks",  # checked again when sending
    ],
)
def test_a_public_destination_is_accepted(url: str) -> None:
    assert registration_problem(url, NOBODY) is None


def test_the_refusal_says_what_the_host_is() -> None:
    problem = registration_problem("http://2130706433/x", NOBODY)

    assert problem == (
        "webhooks go to public addresses only: 2130706433 is 127.0.0.1, a loopback address"
    )


def test_the_allow_list_takes_names_addresses_and_networks() -> None:
    allow = AllowList.parse(["localhost", " 10.0.0.0/8", "[::1]", "", "Receiver.Local."])

    assert registration_problem("http://localhost:9000/x", allow) is None
    assert registration_problem("http://10.20.30.40/x", allow) is None
    assert registration_problem("http://[::1]:81/x", allow) is None
    assert registration_problem("http://receiver.local/x", allow) is None
    assert registration_problem("http://192.168.0.1/x", allow) is not None
    # a name allows that name, not the address it resolves to
    assert registration_problem("http://127.0.0.1/x", allow) is not None


def test_sending_resolves_once_and_refuses_a_name_that_now_reaches_a_private_address(
    no_dns: dict[str, list[str]],
) -> None:
    url = httpx.URL("http://public.example/hooks")
    first = checked_address(url, NOBODY)
    no_dns["public.example"] = ["127.0.0.1"]  # rebinding: the same name, a new answer

    with pytest.raises(DestinationRefused) as refused:
        checked_address(url, NOBODY)

    assert str(first) == PUBLIC
    assert refused.value.reason == "refused: loopback address"


def test_sending_refuses_a_name_with_any_bad_address_and_one_that_does_not_resolve() -> None:
    with pytest.raises(DestinationRefused, match="refused: private address"):
        checked_address(httpx.URL("http://internal.example/"), NOBODY)
    with pytest.raises(DestinationRefused, match="does not resolve"):
        checked_address(httpx.URL("http://nowhere.example/"), NOBODY)


def test_sending_to_an_allow_listed_host_connects_to_its_address() -> None:
    allow = AllowList.parse(["127.0.0.0/8", "::1"])

    assert str(checked_address(httpx.URL("http://localhost:8000/"), allow)) == "127.0.0.1"
    with pytest.raises(DestinationRefused, match="loopback"):  # ::1 is not in this list
        checked_address(httpx.URL("http://localhost:8000/"), AllowList.parse(["127.0.0.0/8"]))
