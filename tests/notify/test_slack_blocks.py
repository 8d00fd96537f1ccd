"""Block Kit messages, built as pure functions from a notice."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from grantflow.notify import slack_blocks as sb
from grantflow.notify.base import NoticeKind
from tests.notify.slack_support import notice


def _texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def _buttons(blocks: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (e["action_id"], e.get("style", ""), e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    }


def test_approval_needed_carries_every_detail_and_both_buttons() -> None:
    n = notice()
    blocks = sb.message(n)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Access request waiting for approval"},
    }
    fields = {f["text"].split("\n", 1)[0]: f["text"].split("\n", 1)[1] for f in blocks[2]["fields"]}
    assert fields == {
        "*Requester*": "Alice Example (alice@example.com)",
        "*Permission*": "`member`",
        "*Resources*": "identity-center-group: `Admins`",
        "*Duration*": "2h",
        "*Integration*": "Org",
        "*State*": "pending",
    }
    assert blocks[1]["text"]["text"] == n.summary
    assert f"<{n.link}|Open the request in Grantflow>" in _texts(blocks)
    assert _buttons(blocks) == {
        ("grantflow_approve", "primary", n.request_id),
        ("grantflow_reject", "danger", n.request_id),
    }
    assert blocks[-1]["block_id"] == sb.DECISION_BLOCK_ID
    reject = blocks[-1]["elements"][1]
    assert reject["confirm"]["confirm"]["text"] == "Reject"


def test_user_text_is_escaped_so_it_cannot_ping_or_forge_links() -> None:
    blocks = sb.message(notice(justification="<!channel> see <https://evil.example|docs> & go"))
    justification = next(b for b in blocks if "Justification" in b.get("text", {}).get("text", ""))
    assert justification["text"]["text"] == (
        "*Justification*\n>&lt;!channel&gt; see &lt;https://evil.example|docs&gt; &amp; go"
    )
    assert "<!channel>" not in _texts(blocks)


def test_without_the_signing_secret_there_are_no_buttons_but_the_link_stays() -> None:
    blocks = sb.message(notice(), interactive=False)
    assert _buttons(blocks) == set()
    assert "Open the request in Grantflow" in _texts(blocks)


@pytest.mark.parametrize(
    "kind", [k for k in NoticeKind if k is not NoticeKind.APPROVAL_NEEDED], ids=str
)
def test_requester_notices_have_their_title_and_no_buttons(kind: NoticeKind) -> None:
    blocks = sb.message(notice(kind, state="granted", reason="done"))
    assert blocks[0]["text"]["text"] == sb.TITLES[kind]
    assert _buttons(blocks) == set()
    assert "*Reason:* done" in _texts(blocks)


def test_granted_shows_sign_in_link_details_and_end_time() -> None:
    ends = datetime(2026, 3, 1, 14, 0, tzinfo=UTC)
    url = "https://d-1.awsapps.com/start/#/console?account_id=1&role_name=Admin"
    access = {"sign_in_url": url, "custom_access_details": "VPN first"}
    blocks = sb.message(notice(NoticeKind.GRANTED, expires_at=ends, access=access))
    outcome = blocks[4]["text"]["text"]
    assert outcome.splitlines() == [
        f"*Ends:* <!date^{int(ends.timestamp())}^{{date_short_pretty}} at {{time}}|"
        "2026-03-01 14:00 UTC>",
        "*Sign in:* <https://d-1.awsapps.com/start/#/console?account_id=1&amp;role_name=Admin|"
        "open the AWS access portal>",
        "*Details:* VPN first",
    ]


def test_long_resource_lists_and_texts_stay_within_slack_limits() -> None:
    many = tuple(f"bucket-{i}" for i in range(25))
    blocks = sb.message(notice(resources=many, justification="x" * 5000, summary="s" * 4000))
    fields = blocks[2]["fields"]
    resources = next(f["text"] for f in fields if f["text"].startswith("*Resources*"))
    assert resources.endswith("`bucket-9` and 15 more")
    assert all(len(f["text"]) <= 2000 for f in fields)
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section"
               and "text" in b)  # fmt: skip
    assert len(blocks[1]["text"]["text"]) == 3000


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (90, "1m 30s"), (3600, "1h"), (7200, "2h"), (5400, "1h 30m"), (93600, "1d 2h")],
)
def test_duration_text(seconds: int, text: str) -> None:
    assert sb.duration_text(seconds) == text


def test_decided_drops_the_buttons_and_appends_the_outcome_once() -> None:
    original = sb.message(notice())
    once = sb.decided(original, ":white_check_mark: Approved by *Bob*")
    twice = sb.decided(once, ":x: Rejected by *Carol*")
    assert _buttons(once) == set()
    assert once[:-1] == original[:-1]
    assert [b["text"]["text"] for b in twice if b.get("block_id") == sb.OUTCOME_BLOCK_ID] == [
        ":x: Rejected by *Carol*"
    ]
