"""The HTTP transport webhooks go out through: it connects only to checked addresses.

For each request the host is resolved once (:func:`shouhou.services.destinations.checked_address`
checks every address), and the request is sent to that address itself, with the original
``Host`` header and, for https, the original name as SNI and for the certificate check. The
connection therefore goes where the check looked, whatever the name resolves to a moment
later (DNS rebinding). docs/decisions/0015-webhook-destinations.md says why this way.
"""

from __future__ import annotations

import threading

import httpx

from shouhou.services.destinations import AllowList, DestinationRefused, checked_address


class GuardedTransport(httpx.BaseTransport):
    """Sends each request to the checked address of its host; refuses non-public ones."""

    def __init__(self, allow: AllowList) -> None:
        self.allow = allow
        # One pool per host name: a kept-alive connection was opened (TLS included) for
        # its name, so it must not carry another name's requests to the same address.
        self._pools: dict[str, httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def _pool(self, host: str) -> httpx.HTTPTransport:
        with self._lock:
            pool = self._pools.get(host)
            if pool is None:
                pool = self._pools[host] = httpx.HTTPTransport(trust_env=False)
            return pool

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        try:
            address = checked_address(url, self.allow)
        except DestinationRefused as exc:
            raise RefusedDestination(exc.reason, request=request) from None
        headers = request.headers.copy()
        headers["host"] = url.netloc.decode("ascii")
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=str(address)),
            headers=headers,
            stream=request.stream,
            extensions=extensions,
        )
        return self._pool(url.host).handle_request(pinned)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


class RefusedDestination(httpx.TransportError):
    """The request was not sent: its host is, or resolved to, a non-public address."""


def guarded_client(allow: AllowList, timeout_s: float) -> httpx.Client:
    """An HTTP client for webhooks: checked destinations, no redirects, no proxy from the
    environment (a proxy would connect on its own terms, past the check)."""
    return httpx.Client(
        transport=GuardedTransport(allow),
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
    )
