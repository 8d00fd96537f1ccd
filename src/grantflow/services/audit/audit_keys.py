"""Where the audit key comes from: settings or a file, never the database.

In order: ``GRANTFLOW_AUDIT_KEY``; the file ``GRANTFLOW_AUDIT_KEY_FILE``; the file
``<GRANTFLOW_DATA_DIR>/audit.key``. ``grantflow serve`` makes that last file (random, mode
0600) when none of them exists, and says so: the key must then be copied somewhere safe and
given to every replica, or their events will not verify with each other's key.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from grantflow.domain.audit_chain import AuditKey, Keyring
from grantflow.settings import Settings

KEY_FILE_NAME = "audit.key"


class AuditKeyError(RuntimeError):
    """The configured audit key cannot be used; the message names the setting."""


@dataclass(frozen=True, slots=True)
class KeySource:
    """Where the current key was found ("GRANTFLOW_AUDIT_KEY", a path) or None."""

    keyring: Keyring
    source: str | None


def default_key_path(settings: Settings) -> Path:
    return Path(settings.data_dir) / KEY_FILE_NAME


def _read(path: Path, setting: str) -> AuditKey:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise AuditKeyError(f"{setting}: cannot read {path} ({err.strerror})") from err
    return _parse(text, f"{setting}: {path}")


def _parse(text: str, setting: str) -> AuditKey:
    try:
        return AuditKey.from_text(text)
    except ValueError as err:
        raise AuditKeyError(f"{setting}: {err}") from err


def load(settings: Settings) -> KeySource:
    """The keyring the settings describe (no current key when none is configured or made)."""
    retired = tuple(_parse(k.get_secret_value(), "GRANTFLOW_AUDIT_RETIRED_KEYS")
                    for k in settings.audit_retired_keys)  # fmt: skip
    if settings.audit_key is not None:
        current = _parse(settings.audit_key.get_secret_value(), "GRANTFLOW_AUDIT_KEY")
        return KeySource(Keyring(current, retired), "GRANTFLOW_AUDIT_KEY")
    if settings.audit_key_file:
        path = Path(settings.audit_key_file)
        return KeySource(Keyring(_read(path, "GRANTFLOW_AUDIT_KEY_FILE"), retired), str(path))
    path = default_key_path(settings)
    if path.exists():
        return KeySource(Keyring(_read(path, "GRANTFLOW_DATA_DIR"), retired), str(path))
    return KeySource(Keyring(None, retired), None)


def generate(path: Path) -> None:
    """Write a new random key to ``path``, readable by its owner only (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    os.chmod(path, 0o600)


def ensure(settings: Settings) -> Path | None:
    """Make ``<data_dir>/audit.key`` when no key is configured; the path when one was made."""
    if settings.audit_key is not None or settings.audit_key_file:
        return None
    path = default_key_path(settings)
    if path.exists():
        return None
    try:
        generate(path)
    except FileExistsError:
        return None  # another process made it first: use theirs
    except OSError as err:
        raise AuditKeyError(
            f"no audit key, and none can be generated: cannot write {path} ({err.strerror}); "
            "set GRANTFLOW_AUDIT_KEY (or GRANTFLOW_AUDIT_KEY_FILE), or a writable "
            "GRANTFLOW_DATA_DIR"
        ) from err
    return path


def too_open(path: Path) -> bool:
    """The key file can be read by its group or by others."""
    try:
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    except OSError:
        return False
