"""The request page stays responsive on a company-sized organization (issue 18): 100,000
resources and 500 flows of every scope kind (``tests/web/large_world.py``), a member in 5 of
60 groups. The first result row is on screen within a second of navigation start, measured in
the page itself (``performance.now()`` when the row is added; navigation start is its origin),
so Playwright's polling adds nothing to the figure.

The organization is written just before; a deployed server would have absorbed that write
(a sync) long before anyone looks: its scheduler rebuilds the eligibility cache once the data
holds still (``requestable.warm_tick``, logged as ``eligibility_warmed``). The test waits for
that line, so it measures what a member sees, not the one-off rebuild that follows a
100,000-resource write (bench/eligibility.py reports that cold figure).

A speed bound holds only on a quiet machine, so this is a ``perf`` test: `make test`
deselects it (a loaded CI machine cannot keep a 1 s bound) and `make perf` runs it alone."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.fixtures.live import LiveServer
from tests.web import large_world
from tests.web.conftest import SCREENSHOTS, Tab, set_password

TabFactory = Callable[..., Tab]
FIRST_ROW_MS = 1000

# Installed before any script of the page runs: note when the first result row is added.
WATCH_FIRST_ROW = """
(() => {
  const seen = () => document.querySelector("#results tr[data-resource-id]");
  const note = () => { if (window.__firstRowMs === undefined && seen()) {
      window.__firstRowMs = performance.now(); } };
  new MutationObserver(note).observe(document, { childList: true, subtree: true });
})();
"""


def _wait_until_warm(live: LiveServer, resources: int) -> None:
    """Until the server logs that its eligibility cache holds the whole organization."""
    deadline = time.monotonic() + 300
    assert live.server is not None
    while time.monotonic() < deadline:
        for line in live.server.logs().splitlines():
            if '"eligibility_warmed"' in line and json.loads(line).get("resources") == resources:
                return
        time.sleep(0.5)  # polling the server's log, not waiting a fixed time
    raise AssertionError(f"the server never warmed its eligibility cache:\n{live.server.logs()}")


@pytest.mark.perf
def test_the_first_results_show_within_a_second_on_a_large_organization(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    member = set_password(live_server.db_url, "grace")
    written = large_world.seed(live_server, member)
    assert written == 100_000
    _wait_until_warm(live_server, written)
    tab = open_tab(live_server.url)
    tab.sign_in("grace")
    tab.page.context.add_init_script(WATCH_FIRST_ROW)
    timings = []
    for _ in range(3):  # the first visit after sign-in, then two more: each must be fast
        tab.goto("/")
        # wait well past the bound, so that a failure says how long the row took
        first_row = tab.page.locator("#results tr[data-resource-id]").first
        expect(first_row).to_be_visible(timeout=90_000)
        timings.append(float(tab.page.evaluate("window.__firstRowMs")))
    expect(tab.page.locator("#result-count")).to_contain_text("resources you can request")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.shot("request-page-large-org", full_page=False)
    print(f"first result row after {timings} ms")  # shown with -s
    assert max(timings) < FIRST_ROW_MS, f"first result row after {timings} ms"
    tab.assert_no_errors()
