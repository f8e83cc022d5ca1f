"""The API's side of observability: each request counted and timed by its route template, an
access line logged for it, and ``GET /metrics`` in the Prometheus text format.

``/metrics`` takes no API key (Prometheus scrapes without one) and is left out of the OpenAPI
document: expose it only to the monitoring network (docs/deployment.md).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shouhou.bootstrap import Engine
from shouhou.observability import UNMATCHED, Telemetry
from shouhou.services.ports import ApiUnitOfWork

access = logging.getLogger("shouhou.access")


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (``/v1/cases/{case_id}``), never the raw
    path: ids in label values would make a time series per case."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class RequestMetrics:
    """Count and time every HTTP request by method, route template and status; log it."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before it answers

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, elapsed_s: float) -> None:
        method, route = scope["method"], route_template(scope)
        self.telemetry.requests.labels(method, route, str(status)).inc()
        self.telemetry.latency.labels(method, route).observe(elapsed_s)
        access.info(
            "%s %s %s %.1fms",
            method,
            route,
            status,
            elapsed_s * 1000,
            extra={
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(elapsed_s * 1000, 3),
            },
        )


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """The process's metrics in the Prometheus text format (no API key: firewall it)."""
    telemetry: Telemetry = request.app.state.telemetry
    return Response(generate_latest(telemetry.registry), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI, engine: Engine[ApiUnitOfWork], telemetry: Telemetry) -> None:
    """Serve ``/metrics`` from ``telemetry`` (with ``engine``'s deadline backlog) and measure
    every request of ``app`` into it."""
    telemetry.watch(engine)
    app.state.telemetry = telemetry
    app.include_router(router)
    app.add_middleware(RequestMetrics, telemetry=telemetry)
