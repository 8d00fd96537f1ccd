"""Session cuts: the deny statements that end a user's existing sessions (pure, no I/O).

Deleting an Identity Center account assignment stops new sign-ins, but role sessions already
issued keep working until they expire (up to the permission set's session duration). A *cut*
ends them: a statement in the permission set's inline policy that denies everything to the
user's sessions of that role issued before the revocation time::

    {"Sid": "GrantflowSessionCut111122223333T20261203193005", "Effect": "Deny",
     "Action": "*", "Resource": "*",
     "Condition": {"StringEquals": {"aws:PrincipalAccount": "111122223333"},
                   "StringLike": {"aws:userid": ["*:alice", "*:bob"]},
                   "DateLessThan": {"aws:TokenIssueTime": "2026-12-03T19:30:05Z"}}}

* ``aws:userid`` of an assumed-role session is ``<role unique id>:<role session name>``, and
  Identity Center names the session after the user's user name; the role id (``AROA…``)
  differs per account and is not known to the control plane, hence ``*:``. Wildcard
  characters in a user name are written as IAM's ``${*}``, ``${?}`` and ``${$}``.
* ``aws:PrincipalAccount`` keeps the cut to the account the grant was in: the inline policy of
  a permission set applies in every account it is provisioned to.
* ``aws:TokenIssueTime`` is when the session's credentials were issued; sessions signed in
  after the cut are not denied.

Statements owned by Grantflow are recognised by their Sid prefix and rebuilt as a whole from
the desired cuts; every other statement of the policy is kept as it is. Users cut at the same
second in the same account share one statement. When the policy would pass the size limit,
the cuts of one account are *coalesced*: the two windows closest in time become one, at the
later time (a wider deny for the earlier users, who hold no live grant of that role), until it
fits; when even one statement per account does not fit, :class:`PolicyTooLarge` says so.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

SID_PREFIX = "GrantflowSessionCut"
# Identity Center turns the inline policy into an inline policy of the IAM role in each account;
# a role's inline policies may hold 10,240 characters, not counting white space (the IC API
# itself takes 32,768, but provisioning a larger one fails).
POLICY_MAX_CHARS = 10_240
_WILDCARDS = {"*": "${*}", "?": "${?}", "$": "${$}"}
_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")
DEFAULT_SESSION_SECONDS = 3600  # a permission set without SessionDuration: one hour

Statement = dict[str, object]


class PolicyError(ValueError):
    """The permission set's inline policy cannot carry the cuts."""


class PolicyTooLarge(PolicyError):
    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class PolicyUnreadable(PolicyError):
    """The existing inline policy is not a JSON policy document: never overwritten."""


@dataclass(frozen=True, order=True)
class CutEntry:
    """One user's sessions of the role in one account, issued before ``not_before``."""

    account_id: str
    not_before: datetime  # UTC, a whole second
    user_name: str


def cut_time(revoked_at: datetime) -> datetime:
    """The cut's time: the revocation time in UTC, rounded *up* to a whole second, so every
    session issued before the revocation is covered (TokenIssueTime has second precision)."""
    at = revoked_at.astimezone(UTC) if revoked_at.tzinfo else revoked_at.replace(tzinfo=UTC)
    if at.microsecond:
        at = at.replace(microsecond=0) + timedelta(seconds=1)
    return at


def session_seconds(duration: str | None) -> int:
    """An ISO 8601 session duration (``PT1H``, ``PT12H``, ``PT1H30M``) in seconds."""
    if not duration:
        return DEFAULT_SESSION_SECONDS
    match = _DURATION.match(duration)
    if match is None or not any(match.groups()):
        raise ValueError(f"not a session duration: {duration!r}")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def user_pattern(user_name: str) -> str:
    """The ``aws:userid`` pattern of the user's sessions of any role: ``*:<user name>``."""
    return "*:" + "".join(_WILDCARDS.get(c, c) for c in user_name)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sid_for(account_id: str, not_before: datetime) -> str:
    return f"{SID_PREFIX}{account_id}T{not_before.astimezone(UTC).strftime('%Y%m%d%H%M%S')}"


def is_cut_statement(statement: object) -> bool:
    return isinstance(statement, dict) and str(statement.get("Sid", "")).startswith(SID_PREFIX)


def statements(entries: Iterable[CutEntry]) -> list[Statement]:
    """One deny statement per (account, cut time), users sorted: equal input, equal text."""
    windows: dict[tuple[str, datetime], set[str]] = {}
    for entry in entries:
        windows.setdefault((entry.account_id, entry.not_before), set()).add(entry.user_name)
    return [
        {
            "Sid": sid_for(account, at),
            "Effect": "Deny",
            "Action": "*",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:PrincipalAccount": account},
                "StringLike": {"aws:userid": sorted(user_pattern(u) for u in users)},
                "DateLessThan": {"aws:TokenIssueTime": _iso(at)},
            },
        }
        for (account, at), users in sorted(windows.items())
    ]


def policy_size(text: str) -> int:
    """Characters as IAM counts them against the limit: white space is not counted."""
    return sum(1 for c in text if not c.isspace())


def canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _others(existing: str) -> list[object]:
    """The statements of ``existing`` that are not Grantflow's cuts."""
    if not existing.strip():
        return []
    try:
        document = json.loads(existing)
    except ValueError as err:
        raise PolicyUnreadable(f"the inline policy is not JSON: {err}") from err
    if not isinstance(document, dict):
        raise PolicyUnreadable("the inline policy is not a JSON object")
    found = document.get("Statement", [])
    listed = found if isinstance(found, list) else [found]
    return [s for s in listed if not is_cut_statement(s)]


def _document(others: Sequence[object], entries: Iterable[CutEntry]) -> str | None:
    listed = [*others, *statements(entries)]
    return canonical({"Version": "2012-10-17", "Statement": listed}) if listed else None


def coalesce_once(entries: Sequence[CutEntry]) -> list[CutEntry] | None:
    """Merge the two cut windows of one account closest in time (to the later time); None
    when every account has one window left."""
    best: tuple[timedelta, str, datetime, datetime] | None = None
    by_account: dict[str, list[datetime]] = {}
    for entry in entries:
        by_account.setdefault(entry.account_id, []).append(entry.not_before)
    for account, times in sorted(by_account.items()):
        ordered = sorted(set(times))
        for earlier, later in itertools.pairwise(ordered):
            gap = later - earlier
            if best is None or gap < best[0]:
                best = (gap, account, earlier, later)
    if best is None:
        return None
    _gap, account, earlier, later = best
    return [
        replace(e, not_before=later) if (e.account_id, e.not_before) == (account, earlier) else e
        for e in entries
    ]


@dataclass(frozen=True)
class Merged:
    """The inline policy to put (None: delete it, nothing is left), and the cuts it holds."""

    policy: str | None
    entries: tuple[CutEntry, ...]
    coalesced: bool
    size: int


def merge(existing: str, entries: Iterable[CutEntry], limit: int = POLICY_MAX_CHARS) -> Merged:
    """``existing`` with Grantflow's cut statements replaced by those of ``entries``."""
    others = _others(existing)
    current = sorted(set(entries))
    coalesced = False
    while True:
        policy = _document(others, current)
        size = policy_size(policy or "")
        if size <= limit:
            return Merged(policy, tuple(current), coalesced, size)
        narrower = coalesce_once(current)
        if narrower is None:
            users = len({(e.account_id, e.user_name) for e in current})
            raise PolicyTooLarge(
                f"the inline policy would be {size:,} characters with the session cuts of "
                f"{users} user(s), over the limit of {limit:,} (IAM's limit for a role's "
                "inline policies): those sessions are not cut until earlier cuts are lifted; "
                "shorten the permission set's other inline statements or its session duration",
                size=size,
                limit=limit,
            )
        current, coalesced = sorted(set(narrower)), True


def cut_statements_of(policy: str) -> list[Statement]:
    """Grantflow's cut statements in an inline policy text (for reconciliation)."""
    if not policy.strip():
        return []
    try:
        document = json.loads(policy)
    except ValueError:
        return []
    found = document.get("Statement", []) if isinstance(document, dict) else []
    listed = found if isinstance(found, list) else [found]
    return [s for s in listed if is_cut_statement(s)]


def keep_cuts(wanted: str, current: str) -> str:
    """``wanted`` (a pooled set's policy) with the cut statements ``current`` holds: a grant
    rewriting the pooled policy never lifts a cut."""
    kept = cut_statements_of(current)
    if not kept:
        return wanted
    document = json.loads(wanted)
    listed = document.get("Statement", [])
    document["Statement"] = [*(listed if isinstance(listed, list) else [listed]), *kept]
    return canonical(document)
