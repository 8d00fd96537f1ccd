"""Background loops of the control plane (scheduler ticks, the managed connector).

Each loop runs as an asyncio task started by the app's lifespan and cancelled on shutdown.
A loop that raises is logged and restarted after a pause: one bad tick never stops the
scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger(__name__)

Tick = Callable[[], Awaitable[None]]


@dataclass
class _Loop:
    name: str
    tick: Tick
    interval: float


@dataclass
class Workers:
    loops: list[_Loop] = field(default_factory=list)
    services: list[tuple[str, Callable[[], Awaitable[None]]]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def every(self, name: str, interval: float, tick: Tick) -> None:
        """Run ``tick`` every ``interval`` seconds."""
        self.loops.append(_Loop(name, tick, interval))

    def service(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a long-lived coroutine (e.g. the managed connector) until shutdown."""
        self.services.append((name, run))

    async def _run_loop(self, loop: _Loop) -> None:
        while True:
            try:
                await loop.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker_tick_failed", worker=loop.name)
            await asyncio.sleep(loop.interval)

    async def _run_service(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker_service_crashed", worker=name)
                await asyncio.sleep(2.0)

    def start(self) -> None:
        for loop in self.loops:
            self._tasks.append(asyncio.create_task(self._run_loop(loop), name=loop.name))
        for name, run in self.services:
            self._tasks.append(asyncio.create_task(self._run_service(name, run), name=name))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
