"""The CLI's stored login: URL and personal API token in the user's config directory, 0600."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "grantflow"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str
    username: str


def save(creds: Credentials) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Create with 0600 from the start: the token never sits in a world-readable file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": creds.url, "token": creds.token, "username": creds.username}, handle)
    os.chmod(path, 0o600)
    return path


def load() -> Credentials | None:
    path = credentials_path()
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return Credentials(str(data["url"]), str(data["token"]), str(data.get("username", "")))


def forget() -> bool:
    path = credentials_path()
    if path.exists():
        path.unlink()
        return True
    return False
