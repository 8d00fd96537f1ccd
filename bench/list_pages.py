"""Benchmark: the list pages at 10,000 requests and 1,000,000 audit events.

Builds a mixed, seedable population (``bench/list_world.py``: 10,000 requests in every state,
100,000 resources, 1,000 users in 3 to 7 of 60 groups, 40 flows approved by groups and users,
1,000,000 audit events) in a fresh database, then times each list endpoint through the real
app (FastAPI's TestClient, in process): p50 and p95 over ``samples`` calls.

    PYTHONPATH=. .venv/bin/python bench/list_pages.py --backend both --seed 1
    PYTHONPATH=. .venv/bin/python bench/list_pages.py --quick   # a small world, seconds

``run(db_url, seed)`` is the entry point other benchmarks import (``bench/eligibility.py``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from fastapi.testclient import TestClient

from bench.list_world import Size, World, build
from grantflow.api.app import create_app
from grantflow.logs import configure_logging
from grantflow.services.runtime.startup import prepare_database
from grantflow.settings import LogFormat, Settings
from grantflow.store.db import build_engine

ADMIN_TOKEN = "gf_pat_bench-admin-token-0123456789abcdef"  # noqa: S105 (a local benchmark)
PG_ADMIN_DSN = os.environ.get(
    "GRANTFLOW_BENCH_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=test"
)
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

Row = tuple[str, float, float]  # (name, p50 ms, p95 ms)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _pages(world: World) -> list[tuple[str, str, str]]:
    """(name, caller, path) of each page timed."""
    return [
        ("to approve", "approver", "/api/v1/access-requests?scope=to_approve&limit=50"),
        ("my requests", "requester", "/api/v1/access-requests?scope=mine&limit=100"),
        ("all requests (admin)", "admin", "/api/v1/access-requests?scope=all&limit=100"),
        ("resources, first page", "admin", "/api/v1/resources?limit=50"),
        ("resources, a search", "admin", f"/api/v1/resources?limit=50&q={world.search}"),
        ("audit, first page", "admin", "/api/v1/audit-events?limit=100"),
        ("audit, an action filter", "admin", "/api/v1/audit-events?limit=100&action=request.reject"),
        ("audit, a prefix filter", "admin", "/api/v1/audit-events?limit=100&action=grant.*"),
        ("audit, a deep page", "admin", f"/api/v1/audit-events?limit=100&before={world.deep_seq}"),
    ]  # fmt: skip


def _time(client: TestClient, path: str, token: str, samples: int) -> tuple[float, float]:
    headers = {"Authorization": f"Bearer {token}"}
    got = client.get(path, headers=headers)  # warm (compiled statements, caches)
    if got.status_code != 200:
        raise RuntimeError(f"GET {path}: {got.status_code} {got.text[:300]}")
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    return pct(times, 0.5), pct(times, 0.95)


def run(db_url: str, seed: int, *, quick: bool = False, samples: int | None = None) -> list[Row]:
    """Build the population in the empty database at ``db_url`` and time every list page:
    (name, p50 ms, p95 ms) rows. ``quick``: a small world and few samples (tests)."""
    size = Size.quick() if quick else Size()
    settings = Settings(database_url=db_url, admin_token=ADMIN_TOKEN,  # type: ignore[arg-type]
                        managed_connector=False, log_level="WARNING")  # fmt: skip
    prepare_database(settings)
    engine = build_engine(db_url)
    try:
        world = build(engine, seed, size)
    finally:
        engine.dispose()
    tokens = {**world.tokens, "admin": ADMIN_TOKEN}
    rows: list[Row] = []
    with TestClient(create_app(settings, run_workers=False)) as client:
        for name, who, path in _pages(world):
            p50, p95 = _time(client, path, tokens[who], samples or (5 if quick else 40))
            rows.append((name, p50, p95))
    return rows


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new schema on the local PostgreSQL."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/list-pages-{uuid.uuid4().hex[:8]}.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def table(results: dict[str, list[Row]]) -> str:
    backends = list(results)
    names = [name for name, _, _ in next(iter(results.values()))]
    head = "| page | " + " | ".join(f"{b} p50 / p95 ms" for b in backends) + " |"
    lines = [head, "| --- |" + " --- |" * len(backends)]
    for i, name in enumerate(names):
        cells = [f"{results[b][i][1]:.1f} / {results[b][i][2]:.1f}" for b in backends]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a small world (seconds)")
    parser.add_argument("--samples", type=int, default=None)
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            start = time.perf_counter()
            with database(backend, Path(tmp)) as url:
                results[backend] = run(url, args.seed, quick=args.quick, samples=args.samples)
            out(f"{backend}: built and measured in {time.perf_counter() - start:.0f} s")
    size = Size.quick() if args.quick else Size()
    out(f"{size.requests:,} requests, {size.audit_events:,} audit events, "
        f"{size.resources:,} resources, {size.users:,} users, seed {args.seed}")  # fmt: skip
    out(table(results))


if __name__ == "__main__":
    configure_logging("WARNING", LogFormat.CONSOLE)  # a line per request would drown the table
    main()
