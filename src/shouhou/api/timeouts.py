"""A read timeout on request bodies: a client that stops sending mid-body gets 408.

uvicorn's ``timeout_keep_alive`` only covers the wait between requests; a client that sends
its headers and then trickles (or stops sending) its body would hold a connection and the
request's task for as long as it liked. This middleware waits at most ``timeout_s`` for each
next piece of the body, then answers 408 and closes the connection.
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shouhou.api import errors


class BodyTimedOut(HTTPException):
    """The next piece of the request body did not come within the timeout."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__(
            408,
            f"the request body stalled: nothing arrived for {timeout_s:g}s",
            headers={"Connection": "close"},
        )


class BodyTimeout:
    """Wait at most ``timeout_s`` seconds for each ``http.request`` message of a body."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        started = False

        async def timed() -> Message:
            nonlocal body_done
            if body_done:  # after the body, receive() waits for a disconnect: no timeout
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout_s)
            except TimeoutError:
                raise BodyTimedOut(self.timeout_s) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, timed, tracked)
        except BodyTimedOut as exc:  # read outside the routes' error handlers
            if started:
                raise
            response = errors.error_response(
                408, errors.HTTP_CODES[408], str(exc.detail), dict(exc.headers or {})
            )
            await response(scope, timed, send)
