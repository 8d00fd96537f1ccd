"""Limits on Identity Center calls, shared by every job and thread of one connector process.

Identity Center throttles per instance, and account assignment operations are processed
asynchronously with a small number in flight. A connector creates ONE
:class:`IdentityCenterLimiter` and passes it to every grant and revoke it runs::

    limiter = IdentityCenterLimiter()
    with limiter.operation(instance_arn):      # at most ``max_in_flight`` at once
        limiter.take(instance_arn)             # at most ``rate`` calls per second
        client.create_account_assignment(...)

The clock and sleep are injected so tests run on a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Clock = Callable[[], float]
Sleep = Callable[[float], None]

DEFAULT_MAX_IN_FLIGHT = 10
DEFAULT_RATE = 20.0  # calls per second


class TokenBucket:
    """A token bucket that *reserves*: a caller takes its token at once (the balance may go
    negative) and then sleeps until its token is due, so waiting happens outside the lock
    and callers are served in arrival order."""

    def __init__(self, rate: float, burst: float, clock: Clock, sleep: Sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = burst
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token, sleeping until it is due; returns the seconds waited."""
        with self._lock:
            self._refill()
            self._tokens -= 1
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def ready_in(self) -> float:
        """Seconds until a token could be taken without waiting (nothing is reserved)."""
        with self._lock:
            self._refill()
            return max(0.0, (1 - self._tokens) / self._rate)

    def _refill(self) -> None:  # under the lock
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now


class _Slots:
    """A counting limit on operations in flight, waitable with a timeout."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the limit must be at least 1")
        self.limit = limit
        self.in_flight = 0
        self._cond = threading.Condition()

    def acquire(self, timeout: float | None) -> bool:
        with self._cond:
            ok = self._cond.wait_for(lambda: self.in_flight < self.limit, timeout=timeout)
            if ok:
                self.in_flight += 1
            return ok

    def release(self) -> None:
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()


class SlotTimeout(TimeoutError):
    """No operation slot became free within the wait allowed."""


class IdentityCenterLimiter:
    """Per Identity Center instance: ``max_in_flight`` operations and ``rate`` calls/second."""

    def __init__(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        rate: float = DEFAULT_RATE,
        burst: float | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        slot_timeout: float | None = 600.0,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.rate = rate
        self.burst = burst if burst is not None else rate
        self.slot_timeout = slot_timeout
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}
        self._slots: dict[str, _Slots] = {}
        self._lock = threading.Lock()

    def _bucket(self, instance_arn: str) -> TokenBucket:
        with self._lock:
            if instance_arn not in self._buckets:
                self._buckets[instance_arn] = TokenBucket(
                    self.rate, self.burst, self._clock, self._sleep
                )
            return self._buckets[instance_arn]

    def _slot(self, instance_arn: str) -> _Slots:
        with self._lock:
            if instance_arn not in self._slots:
                self._slots[instance_arn] = _Slots(self.max_in_flight)
            return self._slots[instance_arn]

    def take(self, instance_arn: str) -> float:
        """Wait for permission to make one call against ``instance_arn``."""
        return self._bucket(instance_arn).take()

    def wait_ready(self, instance_arn: str) -> float:
        """Sleep until a call against ``instance_arn`` could be made at once (taking nothing);
        returns the seconds slept. For callers whose call covers whatever is ready when it is
        made (a status round): under pressure they wait first and then cover more."""
        wait = self._bucket(instance_arn).ready_in()
        if wait > 0:
            self._sleep(wait)
        return wait

    def in_flight(self, instance_arn: str) -> int:
        return self._slot(instance_arn).in_flight

    @contextmanager
    def operation(self, instance_arn: str) -> Iterator[None]:
        """Hold one of the instance's in-flight slots for the whole block."""
        slots = self._slot(instance_arn)
        if not slots.acquire(self.slot_timeout):
            raise SlotTimeout(
                f"no Identity Center operation slot for {instance_arn} within "
                f"{self.slot_timeout}s ({slots.limit} in flight)"
            )
        try:
            yield
        finally:
            slots.release()
