"""Waiting for an asynchronous AWS operation: how long and how often to look
(``Waiter``), and the error when its deadline passes. Below ``identity_center`` and
``assignment_status``, which both wait."""

from __future__ import annotations

import time
from dataclasses import dataclass

from grantflow.aws.errors import AwsError
from grantflow.aws.rate_limit import Clock, Sleep


class OperationTimedOut(AwsError):
    """An asynchronous Identity Center operation did not finish before its deadline."""


@dataclass(frozen=True)
class Waiter:
    """How long to wait for an asynchronous operation, and how often to look."""

    timeout: float = 300.0
    interval: float = 1.0
    clock: Clock = time.monotonic
    sleep: Sleep = time.sleep

    def deadline(self) -> float:
        return self.clock() + self.timeout

    def pause(self, deadline: float, what: str, action: str) -> None:
        """Sleep one interval, or raise :class:`OperationTimedOut` past the deadline."""
        now = self.clock()
        if now >= deadline:
            raise OperationTimedOut(
                f"{what} did not finish within {self.timeout:g}s", action=action
            )
        self.sleep(min(self.interval, deadline - now))
