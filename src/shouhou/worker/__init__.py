"""The worker: fires due deadlines and delivers webhooks (``Worker.run_once(now)``)."""

from __future__ import annotations

from shouhou.worker.runner import Tick, Worker, WorkerSettings, backoff

__all__ = ["Tick", "Worker", "WorkerSettings", "backoff"]
