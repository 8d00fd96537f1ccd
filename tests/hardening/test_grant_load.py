"""The short run of ``bench/grant_load.py`` (``--quick``), so the benchmark cannot rot: a few
requests at a pace and a small burst through a real server and connector process, with
Identity Center's asynchrony emulated (1 s IN_PROGRESS, a fifth of the operations FAILED).
Every FAILED operation is retried until granted or revoked; nothing is lost or duplicated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench import grant_load

pytestmark = pytest.mark.slow


def test_quick_grant_load_with_emulated_asynchrony(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_DEFAULT_REGION"):  # fmt: skip
        monkeypatch.setenv(key, "restored-after-the-test")
    report = grant_load.run(grant_load.Options.quick(), tmp_path)
    report.print("grant load --quick")
    assert report.problems == []
    assert "requests {'expired': 10}" in report.figures["steady load"]
    assert "10 granted" in report.figures["burst"]
    for key in ("steady request→granted", "steady expiry→revoked", "Identity Center calls"):
        assert "nan" not in report.figures[key]
    counts = json.loads((tmp_path / "async.json").read_text())["counts"]
    assert counts["create_failed"] > 0 and counts["delete_failed"] > 0  # retried, then done
    assert counts["create_succeeded"] >= 20 and counts["delete_succeeded"] >= 20
