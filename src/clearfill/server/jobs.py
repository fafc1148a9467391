"""Removals as jobs: queued, run, watched through server-sent events, cancelled.

A job's events are kept in order (every subscriber sees them all, from the
start); the run reports from its worker thread and the event loop hands them on.
Cancelling a queued job takes it out of the queue at once (it never runs);
cancelling a running one sets the flag the run checks between stages, refiner
steps and SR tiles (and the worker is stopped if it does not listen). Finished
jobs are kept ``ttl`` seconds for their result, and at most ``most_kept`` of
them holding at most ``most_bytes`` of results: past either, the oldest are
forgotten first.
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
    wants_previews: bool = False  # started with ?stages=1
    previews: bytes | None = None  # the stage pictures' JSON, made just after the result
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the run is over, previews and all
    finished: float | None = None
    task: asyncio.Task | None = None  # the run, awaiting the device while queued
    entered: bool = False  # it holds the device: cancelling must go through the run
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def report(self, event: dict) -> None:
        """From any thread: add an event (a final one also sets the status)."""
        asyncio.run_coroutine_threadsafe(self._add(event), self.loop)

    async def add(self, event: dict) -> None:
        await self._add(event)

    async def _add(self, event: dict) -> None:
        kind = event.get("type")
        if self.status in FINAL:  # a late report from a run already cancelled: the job has ended
            return
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
                    more = self._changed.wait_for(lambda sent=sent: sent < len(self.events))
                    await asyncio.wait_for(more, KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield ": keep-alive\n\n"

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "events": f"/v1/jobs/{self.id}/events",
                "result": f"/v1/jobs/{self.id}/result"}


    @property
    def result_bytes(self) -> int:
        return (len(self.output[1]) if self.output else 0) + len(self.previews or b"")


class Jobs:
    def __init__(self, ttl_s: float = 600.0, most_kept: int = 32, most_bytes: int = 256_000_000):
        self.ttl_s, self.most_kept, self.most_bytes = ttl_s, most_kept, most_bytes
        self._jobs: dict[str, Job] = {}

    def new(self) -> Job:
        self.forget_old()
        job = Job(secrets.token_urlsafe(12), asyncio.get_running_loop())
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def forget_old(self) -> None:
        """Forget finished jobs past their time, then the oldest while too many are kept
        or their results hold too many bytes."""
        now = time.monotonic()
        finished = sorted((job for job in self._jobs.values() if job.finished is not None), key=lambda j: j.finished)
        kept_bytes = sum(job.result_bytes for job in finished)
        for index, job in enumerate(finished):
            too_many = len(finished) - index > self.most_kept
            if now - job.finished > self.ttl_s or too_many or kept_bytes > self.most_bytes:
                kept_bytes -= job.result_bytes
                del self._jobs[job.id]
