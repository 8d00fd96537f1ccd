"""Everything a running control plane holds, built once by the app factory."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from grantflow.metrics import Metrics
from grantflow.services.runtime.workers import Workers
from grantflow.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    metrics: Metrics
    workers: Workers = field(default_factory=Workers)
