"""Identifiers users see and paste (connector ids go into CloudFormation as ExternalId)."""

from __future__ import annotations

import re
import secrets
import string

CONNECTOR_ID_RE = re.compile(r"^gfc-[a-z0-9]{20}$")
_ALPHABET = string.ascii_lowercase + string.digits


def new_connector_id() -> str:
    return "gfc-" + "".join(secrets.choice(_ALPHABET) for _ in range(20))
