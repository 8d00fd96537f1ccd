from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.aws",
    "tests.fixtures.db",
    "tests.fixtures.api",
    "tests.fixtures.org",
    "tests.fixtures.live",
]


@pytest.fixture(autouse=True)
def _own_data_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Each test's own GRANTFLOW_DATA_DIR: an audit key or checkpoint file one test (or a
    server it starts) makes never reaches another through the working directory."""
    path = tmp_path_factory.mktemp("data")
    monkeypatch.setenv("GRANTFLOW_DATA_DIR", str(path))
    return path
