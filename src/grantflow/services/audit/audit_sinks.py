"""Where checkpoints go, outside the database: a file, S3 under Object Lock, webhooks.

* **file** — one JSON line appended per checkpoint (``O_APPEND``, fsynced). Keep it on another
  disk or host than the database, or make it append-only (``chattr +a``).
* **s3** — one object per checkpoint, written with ``ObjectLockMode`` and
  ``ObjectLockRetainUntilDate``: until then nobody, the bucket owner included (COMPLIANCE
  mode), can delete or overwrite it. Keys are ``<prefix>YYYY/MM/DD/HHMMSS.ffffffZ-<seq>.json``,
  so the latest is the last key of the newest month that has one.
* **webhook** — ``{"type": "audit.checkpoint", "checkpoint": {…}}`` POSTed to the named
  notification webhooks, signed like notifications (``X-Grantflow-Event: audit.checkpoint``);
  the receiver keeps them, Grantflow cannot read them back.

Verification reads the latest checkpoint of each readable sink (file, s3).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws.errors import translate
from grantflow.aws.session import ClientFactory
from grantflow.domain.audit_checkpoint import Checkpoint, CheckpointFormatError, parse
from grantflow.notify.webhook import sign
from grantflow.settings import Settings, WebhookTarget
from grantflow.store.types import utcnow

CHECKPOINT_FILE_NAME = "audit-checkpoints.jsonl"
_TAIL_BLOCK = 8192
_MONTHS_BACK = 25  # how far back S3 is searched for the latest checkpoint


class SinkError(RuntimeError):
    """A sink could not be written or read; the message names it, never a secret."""


class CheckpointSink(Protocol):
    name: str
    readable: bool

    def write(self, checkpoint: Checkpoint) -> None: ...

    def latest(self) -> Checkpoint | None: ...


@dataclass(frozen=True, slots=True)
class Found:
    """What one readable sink holds: its latest checkpoint (None: empty), or why it failed."""

    sink: str
    checkpoint: Checkpoint | None
    error: str | None = None


class FileSink:
    readable = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"file:{path}"

    def write(self, checkpoint: Checkpoint) -> None:
        line = (checkpoint.to_json() + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise SinkError(f"{self.name}: cannot append ({err.strerror})") from err

    def latest(self) -> Checkpoint | None:
        try:
            line = _last_line(self.path)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise SinkError(f"{self.name}: cannot read ({err.strerror})") from err
        if line is None:
            return None
        try:
            return parse(line)
        except CheckpointFormatError as err:
            raise SinkError(f"{self.name}: last line is {err}") from err


def _last_line(path: Path) -> str | None:
    """The file's last non-empty line, read backwards from its end in blocks."""
    with path.open("rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        tail = b""
        while end > 0:
            start = max(0, end - _TAIL_BLOCK)
            handle.seek(start)
            tail = handle.read(end - start) + tail
            end = start
            lines = [x for x in tail.split(b"\n") if x.strip()]
            if len(lines) >= 2 or (lines and end == 0):
                return lines[-1].decode("utf-8", errors="replace")
    return None


class S3Sink:
    readable = True

    def __init__(self, clients: ClientFactory, bucket: str, prefix: str, mode: str,
                 retention_days: int) -> None:  # fmt: skip
        self.clients, self.bucket, self.prefix = clients, bucket, prefix
        self.mode, self.retention = mode, timedelta(days=retention_days)
        self.name = f"s3://{bucket}/{prefix}"

    def key_of(self, checkpoint: Checkpoint) -> str:
        return f"{self.prefix}{checkpoint.at:%Y/%m/%d/%H%M%S.%f}Z-{checkpoint.events.seq}.json"

    def write(self, checkpoint: Checkpoint) -> None:
        try:
            self.clients.client("s3").put_object(
                Bucket=self.bucket, Key=self.key_of(checkpoint),
                Body=checkpoint.to_json().encode("utf-8"), ContentType="application/json",
                ObjectLockMode=self.mode,
                ObjectLockRetainUntilDate=checkpoint.at + self.retention,
                ChecksumAlgorithm="SHA256",
            )  # fmt: skip
        except (ClientError, BotoCoreError) as err:
            raise SinkError(f"{self.name}: {translate(err, action='s3:PutObject')}") from err

    def latest(self) -> Checkpoint | None:
        try:
            key = self._latest_key()
            if key is None:
                return None
            body = self.clients.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"]
            text = body.read().decode("utf-8")
        except (ClientError, BotoCoreError) as err:
            raise SinkError(f"{self.name}: {translate(err, action='s3:GetObject')}") from err
        try:
            return parse(text)
        except CheckpointFormatError as err:
            raise SinkError(f"{self.name}: {key} is {err}") from err

    def _latest_key(self) -> str | None:
        paginator = self.clients.client("s3").get_paginator("list_objects_v2")
        now = utcnow()
        year, month = now.year, now.month
        for _ in range(_MONTHS_BACK):
            newest: str | None = None
            pages = paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{year:04d}/"
                                       f"{month:02d}/")  # fmt: skip
            for page in pages:
                for item in page.get("Contents", []):
                    newest = max(newest or "", str(item["Key"]))
            if newest:
                return newest
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return None


class WebhookSink:
    readable = False

    def __init__(self, targets: list[WebhookTarget], timeout_seconds: float) -> None:
        self.targets = targets
        self.timeout = timeout_seconds
        self.name = "webhook:" + ",".join(t.name for t in targets)

    def write(self, checkpoint: Checkpoint) -> None:
        event = {"type": "audit.checkpoint", "checkpoint": json.loads(checkpoint.to_json())}
        body = json.dumps(event, sort_keys=True, separators=(",", ":")).encode("utf-8")
        failed = []
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for target in self.targets:
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json", "User-Agent": "Grantflow-Webhook/1",
                    "X-Grantflow-Event": "audit.checkpoint",
                    "X-Grantflow-Delivery": f"audit-checkpoint-{checkpoint.signature[:32]}",
                    "X-Grantflow-Timestamp": stamp,
                    "X-Grantflow-Signature": sign(target.secret.get_secret_value(), stamp, body),
                }  # fmt: skip
                try:
                    response = client.post(target.url, content=body, headers=headers)
                except httpx.HTTPError as err:
                    failed.append(f"{target.name} unreachable ({type(err).__name__})")
                    continue
                if not 200 <= response.status_code < 300:
                    failed.append(f"{target.name} answered HTTP {response.status_code}")
        if failed:
            raise SinkError("webhook: " + "; ".join(failed))

    def latest(self) -> Checkpoint | None:
        return None


def checkpoint_file(settings: Settings) -> Path:
    if settings.audit_checkpoint_file:
        return Path(settings.audit_checkpoint_file)
    return Path(settings.data_dir) / CHECKPOINT_FILE_NAME


def build(settings: Settings, clients: ClientFactory | None = None) -> list[CheckpointSink]:
    """Every sink the settings name: always the file; S3 and webhooks when configured."""
    sinks: list[CheckpointSink] = [FileSink(checkpoint_file(settings))]
    if settings.audit_checkpoint_s3_bucket:
        sinks.append(S3Sink(clients or ClientFactory.from_environment(),
                            settings.audit_checkpoint_s3_bucket,
                            settings.audit_checkpoint_s3_prefix,
                            settings.audit_checkpoint_s3_lock_mode,
                            settings.audit_checkpoint_s3_retention_days))  # fmt: skip
    if settings.audit_checkpoint_webhooks:
        sinks.append(WebhookSink(webhook_targets(settings), settings.webhook_timeout_seconds))
    return sinks


def webhook_targets(settings: Settings) -> list[WebhookTarget]:
    chosen = set(settings.audit_checkpoint_webhooks)  # names Settings checked exist
    return [h for h in settings.webhooks if h.name in chosen]


def read_latest(sinks: list[CheckpointSink]) -> list[Found]:
    """The latest checkpoint of every readable sink (or why it could not be read)."""
    found = []
    for sink in sinks:
        if not sink.readable:
            continue
        try:
            found.append(Found(sink.name, sink.latest()))
        except SinkError as err:
            found.append(Found(sink.name, None, str(err)))
    return found
