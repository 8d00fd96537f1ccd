"""The container image, checked without a Docker engine: the Dockerfile's rules are parsed,
and the wheel the image installs is built and installed into a clean venv that must run."""

from __future__ import annotations

import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for raw in (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    stages = _stages()
    assert len(stages) >= 2, "build tools must stay in a build stage"
    final = stages[-1]
    users = [line.split()[1] for line in final if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.upper().startswith("HEALTHCHECK ") and "/healthz" in line for line in final)
    assert any(line.startswith("COPY --from=build") for line in final)
    forbidden = re.compile(r"\b(gcc|build-essential|apt-get install|pip install build)\b")
    assert not [line for line in final if forbidden.search(line)]
    assert any(line.upper().startswith("ENTRYPOINT ") and "grantflow" in line for line in final)


@pytest.mark.slow
def test_the_wheel_installs_into_a_clean_venv_and_runs(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = dist.glob("grantflow-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    version = subprocess.run(
        [str(env_dir / "bin" / "grantflow"), "version"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.stdout.strip()
    db = tmp_path / "gf.db"
    upgraded = subprocess.run(
        [str(env_dir / "bin" / "grantflow"), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=300,
        env={"GRANTFLOW_DATABASE_URL": f"sqlite:///{db}", "PATH": "/usr/bin:/bin"},
    )
    assert upgraded.returncode == 0, upgraded.stderr
    # The runtime needs no test or demo dependency: importing the app must work without them.
    code = "import grantflow.api.app, grantflow.connector.agent, grantflow.web"
    subprocess.run([str(python), "-c", code], check=True, timeout=120)
