"""The Identity Center limiter, on a fake clock."""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from grantflow.aws.rate_limit import IdentityCenterLimiter, SlotTimeout, TokenBucket
from tests.aws.grants.conftest import FakeClock

INSTANCE = "arn:aws:sso:::instance/ssoins-1"


def test_bucket_allows_the_burst_then_paces_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=20.0, burst=20.0, clock=clock, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(60)]
    assert waits[:20] == [0.0] * 20
    assert all(w > 0 for w in waits[20:])
    # 60 calls at 20/s with a burst of 20 take 2 seconds of (fake) time.
    assert clock.now == pytest.approx(2.0)
    assert 60 / clock.now <= 30.0  # burst plus rate, never more


def test_bucket_refills_while_idle_but_not_beyond_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        bucket.take()
    clock.now += 100.0  # a long pause refills to the burst only
    assert [bucket.take() for _ in range(5)] == [0.0] * 5
    assert bucket.take() == pytest.approx(0.1)


def test_waiting_until_ready_takes_nothing() -> None:
    """A status round waits for room in the budget, then gathers what is due and calls."""
    clock = FakeClock()
    limiter = IdentityCenterLimiter(rate=10.0, burst=2.0, clock=clock, sleep=clock.sleep)
    assert limiter.wait_ready(INSTANCE) == 0.0  # a full bucket: at once
    limiter.take(INSTANCE)
    limiter.take(INSTANCE)
    assert limiter.take(INSTANCE) == pytest.approx(0.1)  # the third waited for its token
    assert limiter.wait_ready(INSTANCE) == pytest.approx(0.1)  # until the next one is back
    assert limiter.take(INSTANCE) == 0.0  # and the wait took none


def test_limits_are_per_instance() -> None:
    clock = FakeClock()
    limiter = IdentityCenterLimiter(rate=1.0, burst=1.0, clock=clock, sleep=clock.sleep)
    assert limiter.take(INSTANCE) == 0.0
    assert limiter.take("arn:aws:sso:::instance/ssoins-2") == 0.0
    assert limiter.take(INSTANCE) == pytest.approx(1.0)


def test_at_most_max_in_flight_operations() -> None:
    limiter = IdentityCenterLimiter(max_in_flight=10)
    started, finished = threading.Event(), threading.Event()

    def eleventh() -> None:
        started.set()
        with limiter.operation(INSTANCE):
            finished.set()

    with ExitStack() as stack:
        for _ in range(10):
            stack.enter_context(limiter.operation(INSTANCE))
        assert limiter.in_flight(INSTANCE) == 10
        with limiter.operation("arn:aws:sso:::instance/ssoins-2"):
            pass  # another instance has its own slots
        worker = threading.Thread(target=eleventh)
        worker.start()
        assert started.wait(30)
        assert not finished.wait(0.2)  # blocked while ten are in flight
    assert finished.wait(30)  # one slot freed: it runs
    worker.join(30)
    assert limiter.in_flight(INSTANCE) == 0


def test_waiting_for_a_slot_has_a_deadline() -> None:
    limiter = IdentityCenterLimiter(max_in_flight=1, slot_timeout=0.05)
    with limiter.operation(INSTANCE), pytest.raises(SlotTimeout), limiter.operation(INSTANCE):
        pass
    assert limiter.in_flight(INSTANCE) == 0


def test_slots_are_released_on_errors() -> None:
    limiter = IdentityCenterLimiter(max_in_flight=1)
    with pytest.raises(RuntimeError), limiter.operation(INSTANCE):
        raise RuntimeError("boom")
    assert limiter.in_flight(INSTANCE) == 0


def test_shared_across_threads() -> None:
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleeps.append(seconds)

    limiter = IdentityCenterLimiter(rate=20.0, clock=clock, sleep=sleep)
    threads = [
        threading.Thread(target=lambda: [limiter.take(INSTANCE) for _ in range(10)])
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    # The clock never moved, so 40 calls: 20 from the burst, 20 reserved 1/20 s apart.
    assert sorted(clock.sleeps) == pytest.approx([n / 20 for n in range(1, 21)])
