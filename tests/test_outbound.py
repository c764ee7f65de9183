"""The SSRF guard (notiflow/outbound.py) on its own: what is refused, why, and that nothing is connected to first.

A ``Receiver`` listens on 127.0.0.1 in each test that could reach it: its connection
count proves a refused URL was never even connected to. DNS answers for made-up
names come from a replaced ``notiflow.outbound.resolve`` (the one place the guard
resolves), so "a name resolving to a private address" needs no DNS server.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl

import hypothesis
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from notiflow import outbound
from notiflow.outbound import AllowList, OutboundClient, OutboundRefused, check_url, parse_url, retry_after_seconds
from notiflow.settings import SettingsError, load_settings
from tests.delivery.hook_receiver import Receiver

LOOPBACK_ONLY = AllowList.parse("127.0.0.1")
NOTHING = AllowList.parse("")

#: (URL, a fragment of the reason) — refused even though 127.0.0.1 is allowed. {port} is a live receiver's.
REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://10.0.0.1/", "private"),
    ("http://[::ffff:127.0.0.1]:{port}/hook", "IPv4-mapped"),
    ("http://[::ffff:7f00:1]:{port}/hook", "IPv4-mapped"),
    ("http://2130706433:{port}/hook", "not a canonical IPv4"),
    ("http://0177.0.0.1:{port}/hook", "not a canonical IPv4"),
    ("http://0x7f.0.0.1:{port}/hook", "not a canonical IPv4"),
    ("http://127.1:{port}/hook", "not a canonical IPv4"),
    ("http://127.0.0.01:{port}/hook", "not a canonical IPv4"),
    ("https://[2002:7f00:1::]/", "6to4"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
    ("https://[64:ff9b::a00:1]/", "NAT64"),
    ("https://[::1]/", "loopback"),
    ("https://[0:0:0:0:0:0:0:1]/", "canonical"),
    ("https://[fd12:3456::1]/", "unique-local"),
    ("https://[fe80::1]/", "link-local"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("https://224.0.0.1/", "multicast"),
    ("https://0.0.0.0/", "unspecified"),
    ("https://192.168.1.10/", "private"),
    ("http://private.test/", "resolves to 10.20.30.40"),
    ("https://mixed.test/", "resolves to 192.168.7.7"),
    ("http://8.8.8.8/", "plain http://"),
    ("http://user:pw@127.0.0.1:{port}/hook", "credentials"),
    ("gopher://127.0.0.1:{port}/", "only https://"),
    ("http://[::1/", "malformed"),
    ("http://exa mple.com/", "spaces"),
    ("https://example.com:99999/", "malformed"),
    ("https://ex_ample..com/", "not a valid name"),
    ("https://[fe80::1%25eth0]/", "zone id"),
]

FAKE_DNS = {
    "private.test": ["10.20.30.40"],
    "mixed.test": ["93.184.216.34", "192.168.7.7"],  # one bad address is enough
    "hooks.test": ["127.0.0.1"],
    "gateway.internal": ["10.9.9.9"],
}


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        if host not in FAKE_DNS:
            raise OSError(f"no such name {host}")
        return FAKE_DNS[host]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return lookups


async def test_each_refused_url_is_refused_before_any_connection_with_its_reason():
    async with Receiver() as receiver:
        client = OutboundClient(LOOPBACK_ONLY, timeout=2)
        try:
            for template, reason in REFUSED:
                url = template.format(port=receiver.port)
                with pytest.raises(OutboundRefused) as refused:
                    await client.request("POST", url, content=b"{}")
                assert reason in str(refused.value), (url, str(refused.value))
        finally:
            await client.aclose()
        assert receiver.connections == 0


async def test_loopback_needs_the_allow_setting_and_then_is_called_on_the_checked_address():
    async with Receiver() as receiver:
        with pytest.raises(OutboundRefused, match="127.0.0.1 is a loopback address"):
            await OutboundClient(NOTHING, timeout=2).request("POST", receiver.url(), content=b"{}")
        assert receiver.connections == 0

        client = OutboundClient(LOOPBACK_ONLY, timeout=2)
        try:
            answer = await client.request("POST", receiver.url(), content=b"{}")
        finally:
            await client.aclose()
        assert answer.status_code == 200 and receiver.connections == 1


async def test_public_addresses_need_https_and_allowed_names_may_be_private():
    assert (await check_url("https://8.8.8.8/hook", NOTHING)).addresses == (ipaddress.ip_address("8.8.8.8"),)
    with pytest.raises(OutboundRefused, match="plain http://"):
        await check_url("http://8.8.8.8/hook", NOTHING)
    gateway = AllowList.parse("gateway.internal")
    checked = await check_url("http://gateway.internal:8080/sms", gateway)
    assert (
        checked.addresses == (ipaddress.ip_address("10.9.9.9"),)
        and checked.target.host_header == "gateway.internal:8080"
    )
    assert (await check_url("https://10.1.2.3/", AllowList.parse("10.0.0.0/8"))).addresses
    with pytest.raises(OutboundRefused, match="not a canonical"):  # allowed address, non-canonical spelling
        await check_url("https://012.1.2.3/", AllowList.parse("10.0.0.0/8"))


def test_malformed_hosts_are_refusals_not_crashes():
    for url in (
        "",
        "http://",
        "https://%zz/",
        "http://[]/",
        "http://a..b/",
        "https://" + "a" * 300 + ".com/",
        "http://\u2603.com/x y",
        "http://ex\\ample.com/",
        "https://xn--/",
    ):
        with pytest.raises(OutboundRefused):
            parse_url(url)


async def test_the_connection_goes_to_the_resolved_address_with_the_name_in_host_and_sni(tmp_path, fake_dns):
    """DNS is asked once; the request is pinned to that address; TLS verifies the certificate for the name."""
    cert, key = _self_signed("hooks.test", tmp_path)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    names: list[str | None] = []
    server.sni_callback = lambda _sslobj, name, _ctx: names.append(name)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with Receiver(ssl_context=server) as receiver:
        client = OutboundClient(AllowList.parse("hooks.test"), timeout=5, verify=trusting)
        try:
            answer = await client.request("POST", receiver.url(host="hooks.test"), content=b"{}")
        finally:
            await client.aclose()
    assert answer.status_code == 200
    assert fake_dns == ["hooks.test"]  # one lookup: no second resolution to connect
    assert names == ["hooks.test"] and receiver.requests[0].headers["host"] == f"hooks.test:{receiver.port}"


def test_retry_after_in_seconds_or_as_a_date():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None
    assert retry_after_seconds("999999") == outbound.MAX_RETRY_AFTER_SECONDS


def test_a_bad_allow_entry_stops_start_up_naming_the_setting(monkeypatch):
    monkeypatch.setenv("NOTIFLOW_OUTBOUND_ALLOW", "127.0.0.1, not a host!")
    with pytest.raises(SettingsError, match="NOTIFLOW_OUTBOUND_ALLOW"):
        load_settings()


def _self_signed(name: str, folder) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@hypothesis.settings(max_examples=400, deadline=None)
@hypothesis.given(
    st.one_of(
        st.text(max_size=80),
        st.builds(
            lambda scheme, host, rest: f"{scheme}://{host}{rest}",
            st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
            st.text(max_size=40),
            st.text(max_size=20),
        ),
    )
)
def test_any_string_is_parsed_or_refused_never_a_crash(url):
    """What an admin may type: the guard answers OutboundRefused (a 422), never another exception (a 500)."""
    try:
        parse_url(url)
    except OutboundRefused:
        pass
