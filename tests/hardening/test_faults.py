"""10 grant/revoke cycles while 20 % of the connector's AWS attempts fail (the short variant of
``bench/faults.py``; ``make hardening`` runs 200): nothing is lost, duplicated or left open.
The cycles are the seeded plan's first ten: 5 revoked once granted, 5 left to expire."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import faults

pytestmark = pytest.mark.slow


def test_ten_cycles_at_a_twenty_percent_fault_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION"):  # fmt: skip
        monkeypatch.setenv(key, "restored-after-the-test")
    report = faults.run(10, 0.2, 7, tmp_path, fast_expiry=True, submit_per_second=10,
                        timeout=240)  # fmt: skip
    report.print("faults: 10 cycles at 20 %")
    assert report.problems == []
    assert "faults injected" in report.figures
    assert report.figures["requests"] == {"expired": 5, "revoked": 5}
