"""Which callback URLs the service may call, and how a delivery is signed. Checked at enqueue (a `422`) and again
at delivery, against the addresses the name resolves to then: DNS can change between the two.

`WEBHOOK_ALLOWED_HOSTS` entries:
- `host` allows that host on any port, `host:port` (`[v6]:port`) on that port only;
- a network, `10.0.0.0/8` or `fd00::/8`, lets a listed name resolve into it.

A name may resolve only to public addresses, or to addresses that are themselves listed (as an address or inside
a listed network): loopback, private, link-local (the cloud metadata service at 169.254.169.254), multicast and
reserved addresses are refused unless a person listed them. The delivery then connects to the address it checked,
never resolving the name a second time (no DNS rebinding between the check and the connect).
"""

import asyncio
import hashlib
import hmac
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio.client import Pipeline

from service.core.enqueue import ENQUEUE, prepare
from service.core.keys import job_record
from service.core.record import Field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"http": 80, "https": 443}


class CallbackRefused(ValueError):
    """A callback URL this service will not call (not allowed, not resolvable to an allowed address, malformed).
    `loc` is where the request had it (the web app's 422 names it)."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ("callback_url",)) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Allowlist:
    """`WEBHOOK_ALLOWED_HOSTS`, parsed: host names and addresses (with a port, or None for any) and networks."""

    hosts: frozenset[tuple[str, int | None]]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> "Allowlist":
        hosts: set[tuple[str, int | None]] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            if "/" in entry:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            parts = urlsplit(f"//{entry}")
            if parts.hostname is None:
                raise ValueError(f"WEBHOOK_ALLOWED_HOSTS entry {entry!r} names no host")
            hosts.add((parts.hostname, parts.port))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str, port: int) -> bool:
        return (host, None) in self.hosts or (host, port) in self.hosts

    def allows_address(self, address: IPAddress, port: int) -> bool:
        """A public address, or one a person listed (on this port, or within a listed network)."""
        if address.is_global and not address.is_multicast:
            return True
        return self.allows_host(str(address), port) or any(address in network for network in self.networks)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a delivery goes: the URL as given, and the address it was checked against (what it connects to)."""

    url: str
    scheme: str
    host: str  # as in the URL, lowercased (a name or an address)
    port: int
    address: str

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host (the Host header and TLS name keep the host)."""
        parts = urlsplit(self.url)
        ip = ipaddress.ip_address(self.address)
        netloc = f"[{ip}]:{self.port}" if ip.version == 6 else f"{ip}:{self.port}"
        return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return address


def parse_callback(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute http(s) URL without credentials; `CallbackRefused` otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise CallbackRefused(f"callback_url is not a valid URL: {e}") from None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise CallbackRefused("callback_url must be an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise CallbackRefused("callback_url must not carry credentials")
    if parts.fragment:
        raise CallbackRefused("callback_url must not have a fragment")
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]


async def check_callback(url: str, allowlist: Allowlist, resolve: Resolver = system_resolver) -> Target:
    """The target of `url` if this service may call it now: its host is listed, and every address it resolves to
    is public or listed. Raises `CallbackRefused` with the reason otherwise."""
    scheme, host, port = parse_callback(url)
    if not allowlist.allows_host(host, port):
        raise CallbackRefused(f"callback_url host {host}:{port} is not in WEBHOOK_ALLOWED_HOSTS")
    literal = _address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            resolved = await resolve(host, port)
        except OSError as e:
            raise CallbackRefused(f"callback_url host {host} does not resolve: {e}") from None
        addresses = [a for a in map(_address, resolved) if a is not None]
        if not addresses:
            raise CallbackRefused(f"callback_url host {host} resolves to no address")
    refused = [str(a) for a in addresses if not allowlist.allows_address(a, port)]
    if refused:
        # Every address must pass: a name that resolves to one public and one internal address is refused.
        raise CallbackRefused(
            f"callback_url host {host} resolves to {', '.join(refused)}: not a public address, and not listed in "
            "WEBHOOK_ALLOWED_HOSTS"
        )
    return Target(url, scheme, host, port, str(addresses[0]))


def signature(secret: str, body: bytes) -> str:
    """`X-Signature`'s value: `sha256=` and the lowercase hex HMAC-SHA256 of the body, keyed by WEBHOOK_SECRET."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# The kind of job that delivers a webhook (`service.kinds.webhooks`), on the default queue.
WEBHOOK_KIND = "webhook"
WEBHOOK_QUEUE = "default"


def queue_webhook(tr: Pipeline, job_id: str, url: str, owner: str | None, record_ttl_s: int) -> None:
    """Add to `tr` (a transaction) the delivery job of `job_id`'s webhook, owned as the job was (its owner sees it
    among their jobs), and its id in the job's record: in the transaction that finishes the job, or that follows the
    abort revoking it."""
    delivery = prepare(
        WEBHOOK_KIND, {"job_id": job_id, "url": url}, record_ttl_s=record_ttl_s, owner=owner, queue=WEBHOOK_QUEUE
    )
    ENQUEUE.queue_in_transaction(tr, delivery.keys, delivery.args)
    tr.hset(job_record(job_id), Field.WEBHOOK_JOB, delivery.job_id)
