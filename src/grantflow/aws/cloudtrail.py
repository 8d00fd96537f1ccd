"""Read the organization trail's log files from S3 and keep the events made with grants.

The layout is CloudTrail's own::

    AWSLogs/<org-id>/<account>/CloudTrail/<region>/YYYY/MM/DD/
        <account>_CloudTrail_<region>_<YYYYMMDDTHHMMZ>_<unique>.json.gz   # {"Records": [...]}

Bounded: a log file is streamed through a decompressor that stops at ``max_object_bytes`` of
output, and its records are decoded one at a time up to ``max_records``; a file over either
limit is skipped, not read, and reported in ``unreadable`` (the control plane audits it, so the
admin sees it). A 300 KB gzip bomb costs at most the limit, never its expanded size.

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

import json
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from grantflow.aws.errors import translate
from grantflow.aws.session import ClientFactory
from grantflow.domain.cloudtrail_match import GrantMatcher, MatcherIndex, TrailEvent, parse_record

_FILE_STAMP = re.compile(r"_(\d{8}T\d{4}Z)_[^/]*\.json\.gz$")
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_MAX_OBJECT_BYTES = 64 * 1024 * 1024  # decompressed; GRANTFLOW_CLOUDTRAIL_MAX_OBJECT_BYTES
DEFAULT_MAX_RECORDS = 100_000  # per file; GRANTFLOW_CLOUDTRAIL_MAX_RECORDS_PER_OBJECT
READ_CHUNK_BYTES = 65_536
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_RECORDS_OPEN = re.compile(r'[ \t\n\r]*\{[ \t\n\r]*"Records"[ \t\n\r]*:[ \t\n\r]*\[[ \t\n\r]*')
_SPACE = re.compile(r"[ \t\n\r]*")


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
    max_object_bytes: int = Field(default=DEFAULT_MAX_OBJECT_BYTES, ge=1)
    max_records: int = Field(default=DEFAULT_MAX_RECORDS, ge=1)


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
    """A log file that is not (gzip) JSON ``{"Records": [...]}``, or over a limit."""


class OversizedLogFile(UnreadableLogFile):
    """A log file over ``max_object_bytes`` decompressed or ``max_records``: skipped."""


def read_records(factory: ClientFactory, req: IngestRequest, key: str) -> Iterator[dict[str, Any]]:
    """The records of one log file, one at a time; raises ``UnreadableLogFile`` (possibly
    after some records) when the file is broken or over a limit."""
    s3 = factory.client("s3", region=req.region)
    try:
        body = s3.get_object(Bucket=req.bucket, Key=key)["Body"]
        try:
            text = inflate(body.iter_chunks(READ_CHUNK_BYTES), req.max_object_bytes, key)
        finally:
            body.close()
    except (ClientError, BotoCoreError) as err:
        raise _failed(factory, "s3:GetObject", err) from err
    yield from records_in(text, key, req.max_records)


def inflate(chunks: Iterable[bytes], limit: int, key: str) -> str:
    """The object's text, gunzipped when it is gzip (members one after another, as gzip
    allows), never holding more than ``limit`` bytes of it."""
    out = bytearray()
    head = b""
    inflater: Any = None  # zlib's Decompress (not importable as a type)
    plain = None
    for chunk in chunks:
        if plain is None:
            head += chunk
            if len(head) < len(_GZIP_MAGIC):
                continue
            plain, chunk, head = not head.startswith(_GZIP_MAGIC), head, b""
            inflater = None if plain else zlib.decompressobj(_GZIP_WBITS)
        if plain:
            out += chunk
        else:
            inflater = _gunzip(inflater, chunk, out, limit, key)
        if len(out) > limit:
            raise _oversized(key, f"decompresses to more than {limit} bytes")
    if plain is None:
        out += head
    elif inflater is not None and not inflater.eof:
        raise UnreadableLogFile(f"{key}: the gzip stream is truncated")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UnreadableLogFile(f"{key}: not UTF-8 ({err})") from err


def _gunzip(inflater: Any, data: bytes, out: bytearray, limit: int, key: str) -> Any:
    """Feed ``data`` to ``inflater``, appending at most one byte over ``limit`` to ``out``."""
    try:
        while data:
            out += inflater.decompress(data, limit - len(out) + 1)
            if len(out) > limit:
                raise _oversized(key, f"decompresses to more than {limit} bytes")
            if inflater.eof:  # a member ended; another may follow
                data = inflater.unused_data
                if data:
                    inflater = zlib.decompressobj(_GZIP_WBITS)
            else:
                data = inflater.unconsumed_tail
    except zlib.error as err:
        raise UnreadableLogFile(f"{key}: not gzip ({err})") from err
    return inflater


def _oversized(key: str, why: str) -> OversizedLogFile:
    return OversizedLogFile(f"{key}: skipped, it {why} (the session audit limit)")


def records_in(text: str, key: str, max_records: int) -> Iterator[dict[str, Any]]:
    """The objects of ``{"Records": [...]}``, decoded one at a time (CloudTrail writes the
    list first); any other layout is decoded whole (it is within the byte limit)."""
    opened = _RECORDS_OPEN.match(text)
    if opened is None:
        yield from _records_of_document(text, key, max_records)
        return
    decoder = json.JSONDecoder()
    pos, count = opened.end(), 0
    if text.startswith("]", pos):
        return
    while True:
        try:
            record, pos = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError) as err:
            raise UnreadableLogFile(f"{key}: {err}") from err
        count += 1
        if count > max_records:
            raise _oversized(key, f"holds more than {max_records} records")
        if isinstance(record, dict):
            yield record
        pos = _after_space(text, pos)
        if text.startswith("]", pos):
            return
        if not text.startswith(",", pos):
            raise UnreadableLogFile(f"{key}: expected , or ] at {pos}")
        pos = _after_space(text, pos + 1)


def _after_space(text: str, pos: int) -> int:
    space = _SPACE.match(text, pos)
    return space.end() if space is not None else pos


def _records_of_document(text: str, key: str, max_records: int) -> Iterator[dict[str, Any]]:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise UnreadableLogFile(f"{key}: {err}") from err
    records = document.get("Records") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise UnreadableLogFile(f"{key}: no Records list")
    if len(records) > max_records:
        raise _oversized(key, f"holds more than {max_records} records")
    yield from (r for r in records if isinstance(r, dict))


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


def matches_in(index: MatcherIndex, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
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
                _read_file(factory, req, key, index, result)
    return result


def _read_file(
    factory: ClientFactory, req: IngestRequest, key: str, index: MatcherIndex, result: IngestResult
) -> None:
    """Add one file's matches, or none of them when it turns out unreadable or too large."""
    counted = _Counted(read_records(factory, req, key))
    try:
        found = matches_in(index, counted)
    except UnreadableLogFile as err:
        result.unreadable.append(str(err))
        return
    result.records_read += counted.count
    result.matches.extend(found)


class _Counted(Iterator[dict[str, Any]]):
    def __init__(self, records: Iterator[dict[str, Any]]) -> None:
        self.records = records
        self.count = 0

    def __next__(self) -> dict[str, Any]:
        record = next(self.records)
        self.count += 1
        return record
