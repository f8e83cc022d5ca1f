"""Serving the API over HTTP: uvicorn, which only this package imports (``shouhou serve``)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from fastapi import FastAPI


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, held until :func:`run` serves on it; OSError (address
    in use, no such address) before anything is printed or opened."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a port left in TIME_WAIT by the last run may be bound again; one
        # another process listens on may not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def run(app: FastAPI, sock: socket.socket, *, log_format: str = "text") -> None:
    """Serve ``app`` on ``sock`` (from :func:`listen`) until uvicorn stops (Ctrl-C or
    SIGTERM); with ``log_format="json"`` uvicorn's logs go through the process's JSON handler
    and the API logs its own access lines (with the route template and duration)."""
    if log_format == "json":
        config = uvicorn.Config(app, log_level="info", log_config=None, access_log=False)
    else:
        config = uvicorn.Config(app, log_level="info")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
