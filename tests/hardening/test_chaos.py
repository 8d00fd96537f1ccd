"""10 grant/revoke cycles while the server and the connector are SIGKILLed every few seconds
(the short variant of ``bench/chaos.py``; ``make hardening`` runs 200). The cycles are the
seeded plan's first ten: 5 revoked once granted, 5 left to expire."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import chaos

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # with session cuts checked


def test_ten_cycles_with_processes_killed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION"):  # fmt: skip
        monkeypatch.setenv(key, "restored-after-the-test")
    report = chaos.run(10, 7, tmp_path, every=(1.0, 3.0), fast_expiry=True,
                       submit_per_second=4, timeout=240)  # fmt: skip
    report.print("chaos: 10 cycles")
    assert report.problems == []
    kills = report.figures["kills"]
    assert kills["server"] >= 1 and kills["connector"] >= 1, kills
    assert report.figures["requests"] == {"expired": 5, "revoked": 5}
