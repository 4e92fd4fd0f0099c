"""The callback checks (what may be called, resolved how) and the bounded read of a receiver's answer."""

from collections.abc import AsyncIterator

import httpx
import pytest

from service.core.webhooks import Allowlist, CallbackRefused, check_callback, signature
from service.kinds.webhooks import MAX_ANSWER_BYTES, _answer_excerpt


def resolver(*addresses: str):
    async def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


async def test_a_listed_name_with_public_addresses_is_called_at_the_checked_address() -> None:
    target = await check_callback(
        "https://hooks.example.com/in?x=1", Allowlist.parse(["hooks.example.com"]), resolver("93.184.215.14")
    )
    assert target.connect_url == "https://93.184.215.14:443/in?x=1"
    assert target.host_header == "hooks.example.com"


@pytest.mark.parametrize(
    "addresses",
    [
        ("169.254.169.254",),  # the cloud metadata service
        ("127.0.0.1",),
        ("10.1.2.3",),
        ("93.184.215.14", "192.168.0.10"),  # one public address does not excuse the other
        ("::ffff:127.0.0.1",),  # loopback, spelled as IPv6
        ("fe80::1",),
        ("0.0.0.0",),
    ],
)
async def test_a_listed_name_resolving_to_an_internal_address_is_refused(addresses: tuple[str, ...]) -> None:
    with pytest.raises(CallbackRefused, match="not a public address"):
        await check_callback("http://hooks.example.com/", Allowlist.parse(["hooks.example.com"]), resolver(*addresses))


async def test_a_listed_network_admits_a_name_that_resolves_into_it() -> None:
    allowlist = Allowlist.parse(["hooks.internal", "10.0.0.0/8"])
    target = await check_callback("http://hooks.internal:8080/", allowlist, resolver("10.4.5.6"))
    assert target.connect_url == "http://10.4.5.6:8080/"
    assert target.host_header == "hooks.internal:8080"
    with pytest.raises(CallbackRefused):
        await check_callback("http://hooks.internal/", allowlist, resolver("192.168.1.1"))


async def test_a_port_in_the_list_allows_that_port_only() -> None:
    allowlist = Allowlist.parse(["hooks.example.com:8443", "[::1]:9000"])
    public = resolver("93.184.215.14")
    await check_callback("https://hooks.example.com:8443/", allowlist, public)
    with pytest.raises(CallbackRefused, match="not in WEBHOOK_ALLOWED_HOSTS"):
        await check_callback("https://hooks.example.com/", allowlist, public)
    target = await check_callback("http://[::1]:9000/x", allowlist)
    assert target.connect_url == "http://[::1]:9000/x"


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(CallbackRefused, match="does not resolve"):
        await check_callback("http://hooks.example.com/", Allowlist.parse(["hooks.example.com"]), fails)


def test_the_signature_is_the_hex_hmac_of_the_body() -> None:
    # RFC 4231 test case 2.
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


async def test_an_endless_answer_is_read_only_up_to_the_bound() -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 512
            yield b"x" * 512

    response = httpx.Response(500, stream=_Stream(endless()))
    excerpt = await _answer_excerpt(response)
    assert len(excerpt) == MAX_ANSWER_BYTES
    assert sent <= MAX_ANSWER_BYTES + 512


class _Stream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.chunks:
            yield chunk
