"""Job handlers: one function per job type, each idempotent (delivery is at-least-once)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grantflow import __version__
from grantflow.aws.errors import AccessDenied, AwsError, AwsUnavailable, Throttled
from grantflow.aws.session import ClientFactory
from grantflow.aws.verify import verify_management_access


class JobFailure(Exception):
    """A handler's verdict that the job failed; ``retryable`` says whether to try again."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class Interrupted(Exception):
    """The connector is shutting down before the handler finished: give the job back."""


@dataclass(frozen=True)
class JobContext:
    connector_id: str
    aws: ClientFactory
    stopping: threading.Event = field(default_factory=threading.Event)

    def pause(self, seconds: float) -> None:
        """Sleep, unless the connector is stopping (then raise Interrupted)."""
        if self.stopping.wait(seconds):
            raise Interrupted()


Handler = Callable[[JobContext, Mapping[str, Any]], dict[str, Any]]


def failure_from_aws(err: AwsError) -> JobFailure:
    retryable = isinstance(err, Throttled | AwsUnavailable)
    text = str(err) if isinstance(err, AccessDenied) else err.message
    return JobFailure(text, retryable=retryable)


def verify(ctx: JobContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    role_arn = str(payload["role_arn"])
    external_id = str(payload.get("external_id") or ctx.connector_id)
    try:
        found = verify_management_access(ctx.aws, role_arn, external_id)
    except AwsError as err:
        raise failure_from_aws(err) from err
    return {
        "organization_id": found.organization_id,
        "management_account_id": found.management_account_id,
        "management_account_email": found.management_account_email,
        "assumed_identity_arn": found.identity.arn,
    }


MAX_PING_DELAY_SECONDS = 60.0


def ping(ctx: JobContext, payload: Mapping[str, Any]) -> dict[str, Any]:
    """Round trip through the job protocol (the console's "Test connector"); the optional
    delay lets an operator watch leases and their expiry."""
    delay = min(float(payload.get("delay_seconds", 0.0)), MAX_PING_DELAY_SECONDS)
    if delay > 0:
        ctx.pause(delay)
    return {"connector_id": ctx.connector_id, "pid": os.getpid(), "version": __version__}


def default_handlers() -> dict[str, Handler]:
    return {"verify": verify, "ping": ping}
