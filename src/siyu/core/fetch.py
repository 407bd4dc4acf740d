"""Fetching a URL a member gave the server (a moment's image by URL): http(s) only, public addresses only
unless `SIYU_FETCH_ALLOW_PRIVATE`, a timeout, a size cap; every refusal names the URL and the reason.

The host is resolved once and checked, and the request goes to that checked address (the name kept for
the Host header and TLS), so a name cannot resolve to a public address for the check and to an internal
one for the request. Each redirect is checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

import httpx

from siyu.core.config import get_settings
from siyu.core.errors import ValidationFailed

MAX_REDIRECTS = 3
_SHOWN = 200  # characters of a URL an error message quotes
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Fetched:
    url: str  # as given
    final_url: str  # after redirects
    content: bytes
    content_type: str


def _refused(url: str, reason: str, *, where: str, hint: str | None = None) -> ValidationFailed:
    return ValidationFailed(f"{url[:_SHOWN]}: {reason}", where=where, hint=hint)


def _public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _resolve(host: str, port: int, *, url: str, where: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise _refused(url, f"the host {host!r} cannot be resolved ({error})", where=where) from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise _refused(url, f"the host {host!r} has no address", where=where)
    return addresses


def fetch(
    url: str,
    *,
    max_bytes: int,
    where: str = "url",
    allow_private: bool | None = None,
    timeout: float | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET `url` and return its body, at most `max_bytes`, within `timeout` seconds (default: the
    settings'). Refused, with the URL and the reason: a scheme other than http(s), an address that is not
    public (unless allowed), an answer other than 200, a body over the cap, a timeout, too many redirects.
    `transport` is the seam tests may swap (httpx's)."""
    settings = get_settings()
    allow_private = settings.fetch_allow_private if allow_private is None else allow_private
    timeout = settings.fetch_timeout_seconds if timeout is None else timeout
    deadline = time.monotonic() + timeout
    current = url.strip()
    # trust_env off: a proxy from the environment would connect where it likes, past the address check
    with httpx.Client(
        timeout=timeout, transport=transport, follow_redirects=False, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                parsed = httpx.URL(current)
            except httpx.InvalidURL as error:
                raise _refused(url, f"not a URL ({error})", where=where) from None
            if parsed.scheme not in ("http", "https"):
                raise _refused(
                    url,
                    f"the scheme {parsed.scheme or '(none)'!r} is not fetched",
                    where=where,
                    hint="give an http:// or https:// URL",
                )
            if not parsed.host:
                raise _refused(url, "the URL names no host", where=where)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            addresses = _resolve(parsed.host, port, url=url, where=where)
            private = [a for a in addresses if not _public(a)]
            if private and not allow_private:
                raise _refused(
                    url,
                    f"the host {parsed.host!r} is a private, loopback or reserved address ({private[0]})",
                    where=where,
                    hint="give a URL on the public internet (SIYU_FETCH_ALLOW_PRIVATE allows others)",
                )
            pinned = parsed.copy_with(host=str(addresses[0]))
            request = client.build_request(
                "GET",
                pinned,
                headers={"Host": parsed.netloc.decode("ascii"), "Accept": "image/jpeg, image/png, */*"},
                extensions={"sni_hostname": parsed.host} if parsed.scheme == "https" else {},
            )
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException:
                raise _refused(url, f"no answer within {timeout:g} s", where=where) from None
            except httpx.HTTPError as error:
                raise _refused(url, f"cannot be fetched ({error})", where=where) from None
            try:
                if response.is_redirect and "location" in response.headers:
                    current = str(parsed.join(response.headers["location"]))
                    continue
                if response.status_code != 200:
                    raise _refused(
                        url,
                        f"the server answered {response.status_code} {response.reason_phrase}".rstrip(),
                        where=where,
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise _refused(url, f"{declared} bytes, more than the {max_bytes} allowed", where=where)
                body = bytearray()
                try:
                    for chunk in response.iter_bytes():
                        body.extend(chunk)
                        if len(body) > max_bytes:
                            raise _refused(url, f"more than the {max_bytes} bytes allowed", where=where)
                        if time.monotonic() > deadline:
                            raise _refused(url, f"not fetched within {timeout:g} s", where=where)
                except httpx.TimeoutException:
                    raise _refused(url, f"no answer within {timeout:g} s", where=where) from None
                except httpx.HTTPError as error:
                    raise _refused(url, f"cannot be fetched ({error})", where=where) from None
                return Fetched(
                    url=url,
                    final_url=current,
                    content=bytes(body),
                    content_type=response.headers.get("content-type", ""),
                )
            finally:
                response.close()
    raise _refused(url, f"more than {MAX_REDIRECTS} redirects", where=where)
