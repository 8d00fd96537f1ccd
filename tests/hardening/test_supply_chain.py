"""Code and supply chain: bandit on src (no medium or high finding unless justified inline
with ``# nosec <id>``) and pip-audit on every pin of pyproject.toml."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def pinned_requirements() -> list[str]:
    """Every dependency pin in pyproject.toml: the runtime ones and each extra's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        pins += [p for p in extra if p not in pins]
    return pins


def test_every_dependency_is_pinned_exactly() -> None:
    loose = [p for p in pinned_requirements() if "==" not in p]
    assert loose == []


def test_bandit_finds_nothing_of_medium_or_high_severity() -> None:
    out = subprocess.run(
        [str(BIN / "bandit"), "-r", str(ROOT / "src"), "-ll", "-f", "json", "-q"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    report = json.loads(out.stdout)
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
        if r["issue_severity"] in ("MEDIUM", "HIGH")
    ]
    assert findings == []
    assert report["metrics"]["_totals"]["loc"] > 10_000  # it really scanned the source


def _audit(requirements: Path, *service: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "pip-audit"), "-r", str(requirements), "--no-deps", "--disable-pip",
         "--format", "json", "--progress-spinner", "off", "--timeout", "20", *service],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_pip_audit_finds_no_known_vulnerability_in_the_pins(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(pinned_requirements()) + "\n")
    out = _audit(requirements)
    report = json.loads(out.stdout or '{"dependencies": []}')
    deps = report["dependencies"]
    audited = [d for d in deps if "skip_reason" not in d]
    if not audited:
        # PyPI's JSON API (pip-audit's default service) is not served here; try OSV.
        osv = _audit(requirements, "--vulnerability-service", "osv")
        if osv.returncode != 0 and not osv.stdout.strip():
            reasons = sorted({d["skip_reason"].split(":")[0] for d in deps}) or [out.stderr[-200:]]
            osv_error = (osv.stderr.strip().splitlines() or ["no output"])[-1][:200]
            pytest.skip(
                "no vulnerability database reachable from this network (only package "
                f"registries are): PyPI JSON API: {'; '.join(reasons)} for all {len(deps)} "
                f"pins; OSV: {osv_error}"
            )
        report = json.loads(osv.stdout)
        audited = report["dependencies"]
    vulnerable = {
        f"{d['name']}=={d['version']}": [v["id"] for v in d["vulns"]]
        for d in audited
        if d.get("vulns")
    }
    assert vulnerable == {}
    assert len(audited) == len(pinned_requirements())
