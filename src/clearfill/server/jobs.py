"""Removals as jobs: queued, run, watched through server-sent events, cancelled.

A job's events are kept in order (every subscriber sees them all, from the
start); the run reports from its worker thread and the event loop hands them on.
Cancelling sets a flag the run checks between stages, refiner steps and SR tiles.
Finished jobs are kept ``ttl`` seconds for their result, then forgotten.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator

KEEPALIVE_S = 15.0
FINAL = ("done", "error", "cancelled")


@dataclass
class Job:
    id: str
    loop: asyncio.AbstractEventLoop
    created: float = field(default_factory=time.monotonic)
    status: str = "queued"  # queued, running, done, error, cancelled
    events: list[dict] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    output: tuple[str, bytes] | None = None  # (media type, bytes) once done
    finished: float | None = None
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def report(self, event: dict) -> None:
        """From any thread: add an event (a final one also sets the status)."""
        asyncio.run_coroutine_threadsafe(self._add(event), self.loop)

    async def add(self, event: dict) -> None:
        await self._add(event)

    async def _add(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "started":
            self.status = "running"
        elif kind in FINAL:
            self.status, self.finished = kind, time.monotonic()
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def stream(self) -> AsyncIterator[str]:
        """Server-sent events: every event so far, then new ones until the last."""
        sent = 0
        while True:
            while sent < len(self.events):
                event = self.events[sent]
                sent += 1
                yield f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"
                if event["type"] in FINAL:
                    return
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait_for(lambda: sent < len(self.events)), KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "events": f"/v1/jobs/{self.id}/events",
                "result": f"/v1/jobs/{self.id}/result"}


class Jobs:
    def __init__(self, ttl_s: float = 600.0):
        self.ttl_s = ttl_s
        self._jobs: dict[str, Job] = {}

    def new(self) -> Job:
        self._forget_old()
        job = Job(secrets.token_urlsafe(12), asyncio.get_running_loop())
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def _forget_old(self) -> None:
        now = time.monotonic()
        for job_id in [j.id for j in self._jobs.values() if j.finished and now - j.finished > self.ttl_s]:
            del self._jobs[job_id]
