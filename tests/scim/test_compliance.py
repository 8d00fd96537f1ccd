"""The third-party SCIM compliance checker (scim2-tester) against the real app, over HTTP.

The scim2 client's transport is the Starlette TestClient (an httpx client) on the app.
Every check must succeed, unless it is listed in NOT_APPLICABLE with the reason.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
from fastapi.testclient import TestClient
from scim2_client import BaseSyncSCIMClient
from scim2_tester import CheckResult, Status, check_server

from tests.fixtures.api import Api

# Checks that do not apply to Grantflow: (title, resource type, words of the checker's reason)
# -> why. Anything else that is not a success fails the test.
NOT_APPLICABLE: dict[tuple[str, str, str], str] = {
    ("search_with_attributes", "User", "several resource types"): (
        "POST /.search across several resource types is not supported (501, which RFC 7644 "
        "§3.4.3 allows); /Users/.search and /Groups/.search are"
    ),
    ("search_with_attributes", "Group", "several resource types"): (
        "as above: no cross-type /.search"
    ),
    ("check_add_attribute", "Group", "'members'"): (
        "members[].display is not stored: RFC 7643 §4.2 defines members by value, $ref and "
        "type; a membership is (group, user) and value/$ref/type round-trip, display is dropped"
    ),
    ("check_replace_attribute", "Group", "'members'"): "as above: members[].display is dropped",
}


class ScimOverTestClient(BaseSyncSCIMClient):
    """scim2-client's sync engine over the Starlette TestClient (httpx), like its httpx2 one."""

    def __init__(self, client: TestClient, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.http = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.http.base_url
        url = self.http.build_request("GET", endpoint).url
        return bool(url.host == base.host and url.raw_path.startswith(base.raw_path))

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.http.request(method, url, **kwargs)
        return response


OK = {Status.SUCCESS, Status.COMPLIANT, Status.ACCEPTABLE}


def _summary(results: list[CheckResult]) -> str:
    counts = Counter(r.status.name for r in results)
    lines = [f"scim2-tester: {len(results)} checks: {dict(sorted(counts.items()))}"]
    for r in results:
        if r.status not in OK:
            why = _not_applicable(r)
            first = (r.reason or "").splitlines()[0] if r.reason else ""
            note = f" -> NOT APPLICABLE: {why}" if why else ""
            lines.append(f"  {r.status.name:9} {r.resource_type or '-':6} {r.title}: {first}{note}")
    return "\n".join(lines)


def _not_applicable(result: CheckResult) -> str | None:
    for (title, kind, words), why in NOT_APPLICABLE.items():
        if (result.title, result.resource_type) == (title, kind) and words in (result.reason or ""):
            return why
    return None


def test_scim2_tester_compliance(api: Api, scim_token: str) -> None:
    http = TestClient(
        api.client.app,
        base_url="http://testserver/scim/v2/",
        headers={"Authorization": f"Bearer {scim_token}"},
    )
    results = check_server(ScimOverTestClient(http), raise_exceptions=False)
    print(_summary(results))
    failed = [r for r in results if r.status not in OK and _not_applicable(r) is None]
    assert results and not failed, _summary(failed)
    assert sum(r.status is Status.SUCCESS for r in results) > 50
