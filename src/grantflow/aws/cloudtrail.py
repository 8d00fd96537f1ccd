"""Read the organization trail's log files from S3 and keep the events made with grants.

The layout is CloudTrail's own::

    AWSLogs/<org-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<unique>.json.gz   # {"Records": [...]}

Incremental: the control plane passes a cursor (the last key read under each
``…/<account>/CloudTrail/<region>/`` prefix) and gets the new one back. Only the accounts of the
grants being matched are listed, from the day the earliest of them began. Files stamped after
``as_of`` (the moment the control plane took its snapshot of grants) are left for the next run:
a grant made after the snapshot could have events in them.

The connector returns only the events that match a grant (not the whole trail): the trail holds
every principal's activity in the organization, and the control plane needs — and should hold —
only what was done with the access it granted.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from grantflow.aws.errors import translate
from grantflow.aws.session import ClientFactory
from grantflow.domain.cloudtrail_match import GrantMatcher, MatcherIndex, TrailEvent, parse_record

_FILE_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_[^/]*\.json\.gz$")
CLOCK_SKEW = timedelta(minutes=5)


class IngestRequest(BaseModel):
    """The ``audit_ingest`` job payload (besides the management role)."""

    model_config = ConfigDict(extra="ignore")

    bucket: str
    organization_id: str
    region: str | None = None
    matchers: list[GrantMatcher]
    cursor: dict[str, str] = Field(default_factory=dict)
    as_of: datetime
    max_files: int = Field(default=500, ge=1)
    max_matches: int = Field(default=5000, ge=1)


class IngestResult(BaseModel):
    files_read: int = 0
    records_read: int = 0
    matches: list[dict[str, Any]] = Field(default_factory=list)
    cursor: dict[str, str] = Field(default_factory=dict)
    unreadable: list[str] = Field(default_factory=list)  # skipped, with the reason
    more: bool = False  # stopped at a limit: run again soon


# --- get: S3 only --------------------------------------------------------------------------


def _failed(factory: ClientFactory, action: str, err: ClientError | BotoCoreError) -> Exception:
    return translate(err, action=action, role_arn=factory.role_arn)


def list_region_prefixes(factory: ClientFactory, req: IngestRequest, account: str) -> list[str]:
    s3 = factory.client("s3", region=req.region)
    base = f"AWSLogs/{req.organization_id}/{account}/CloudTrail/"
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=req.bucket, Prefix=base, Delimiter="/"
        )
        return [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
    except (ClientError, BotoCoreError) as err:
        raise _failed(factory, "s3:ListBucket", err) from err


def list_keys_after(
    factory: ClientFactory, req: IngestRequest, prefix: str, start_after: str
) -> Iterator[str]:
    s3 = factory.client("s3", region=req.region)
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=req.bucket, Prefix=prefix, StartAfter=start_after
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield str(obj["Key"])
    except (ClientError, BotoCoreError) as err:
        raise _failed(factory, "s3:ListBucket", err) from err


class UnreadableLogFile(ValueError):
    """A log file that is not gzip JSON ``{"Records": [...]}``."""


def read_records(factory: ClientFactory, req: IngestRequest, key: str) -> list[dict[str, Any]]:
    s3 = factory.client("s3", region=req.region)
    try:
        body = s3.get_object(Bucket=req.bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as err:
        raise _failed(factory, "s3:GetObject", err) from err
    try:
        document = json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
    except (OSError, EOFError, ValueError) as err:
        raise UnreadableLogFile(f"{key}: {err}") from err
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise UnreadableLogFile(f"{key}: no Records list")
    return [r for r in records if isinstance(r, dict)]


# --- transform: pure -----------------------------------------------------------------------


def file_stamp(key: str) -> datetime | None:
    found = _FILE_STAMP.search(key)
    if found is None:
        return None
    return datetime.strptime(found.group(1), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def day_prefix(prefix: str, when: datetime) -> str:
    """The key before every file of ``when``'s day under ``prefix``."""
    return f"{prefix}{when:%Y/%m/%d}/"


def start_after(req: IngestRequest, prefix: str, account: str) -> str:
    earliest = min(m.start for m in req.matchers if m.account_id == account)
    return max(req.cursor.get(prefix, ""), day_prefix(prefix, earliest - CLOCK_SKEW))


def to_match(grant_id: str, event: TrailEvent) -> dict[str, Any]:
    return {"grant_id": grant_id, **event.model_dump(mode="json")}


def matches_in(index: MatcherIndex, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for record in records:
        event = parse_record(record)
        grant_id = index.match(event) if event is not None else None
        if event is not None and grant_id is not None:
            found.append(to_match(grant_id, event))
    return found


# --- the job -------------------------------------------------------------------------------


def _fresh(key: str, as_of: datetime) -> bool:
    """Written after the snapshot of grants: leave it for the next run."""
    stamp = file_stamp(key)  # minute precision: the file may hold events of that whole minute
    return stamp is not None and stamp + timedelta(minutes=1) > as_of


def ingest(factory: ClientFactory, req: IngestRequest) -> IngestResult:
    """Read new log files of the matchers' accounts; return matched events and the cursor."""
    result = IngestResult(cursor=dict(req.cursor))
    index = MatcherIndex(req.matchers)
    for account in sorted({m.account_id for m in req.matchers}):
        for prefix in list_region_prefixes(factory, req, account):
            for key in list_keys_after(factory, req, prefix, start_after(req, prefix, account)):
                if _fresh(key, req.as_of):
                    break  # keys sort by time: the rest of this prefix is newer still
                if not key.endswith(".json.gz"):
                    continue
                if result.files_read >= req.max_files or len(result.matches) >= req.max_matches:
                    result.more = True
                    return result
                result.files_read += 1
                result.cursor[prefix] = key
                try:
                    records = read_records(factory, req, key)
                except UnreadableLogFile as err:
                    result.unreadable.append(str(err))
                    continue
                result.records_read += len(records)
                result.matches.extend(matches_in(index, records))
    return result
