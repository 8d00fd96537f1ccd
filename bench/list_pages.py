"""Benchmark: the list pages at 10,000 requests and 1,000,000 audit events.

Builds a mixed, seedable population (``bench/list_world.py``: 10,000 requests in every state,
100,000 resources, 1,000 users in 3 to 7 of 60 groups, 40 flows approved by groups and users,
1,000,000 audit events) in a fresh database, then times each list endpoint through the real
app (FastAPI's TestClient, in process): p50 and p95 over ``samples`` calls.

    PYTHONPATH=. .venv/bin/python bench/list_pages.py --backend both --seed 1
    PYTHONPATH=. .venv/bin/python bench/list_pages.py --quick   # a small world, seconds
    ... --reuse /tmp/grantflow-bench   # keep the built world (SQLite file / PostgreSQL template
                                       # database, keyed by backend, seed and size) and start
                                       # from a copy of it next time: minutes saved a run

``run(db_url, seed)`` is the entry point other benchmarks import (``bench/eligibility.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
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


def run(
    db_url: str,
    seed: int,
    *,
    quick: bool = False,
    samples: int | None = None,
    built: World | None = None,
    keep: Callable[[World], None] | None = None,
    gc_freeze: bool = False,
) -> list[Row]:
    """Build the population in the empty database at ``db_url`` and time every list page:
    (name, p50 ms, p95 ms) rows. ``quick``: a small world and few samples (tests).
    ``built``: the database already holds this world (a kept copy); ``keep``: called with the
    world once built, before anything connects to serve it (``--reuse``)."""
    size = Size.quick() if quick else Size()
    settings = Settings(database_url=db_url, admin_token=ADMIN_TOKEN,
                        managed_connector=False, log_level="WARNING")  # fmt: skip
    prepare_database(settings)  # a kept copy is upgraded to the current migrations here
    world = built
    if world is None:
        engine = build_engine(db_url)
        try:
            world = build(engine, seed, size)
        finally:
            engine.dispose()
        if keep is not None:
            keep(world)
    tokens = {**world.tokens, "admin": ADMIN_TOKEN}
    rows: list[Row] = []
    with TestClient(create_app(settings, run_workers=False)) as client:
        if gc_freeze:  # what a server could do once started: the heap so far is never rescanned
            gc.collect()
            gc.freeze()
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


@contextmanager
def copy_of(backend: str, tmp: Path, template: str) -> Iterator[str]:
    """A fresh copy of a kept world: a SQLite file's copy, or a PostgreSQL database created
    from the kept template database."""
    if backend == "sqlite":
        path = tmp / f"list-pages-{uuid.uuid4().hex[:8]}.db"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    name = f"bench_lists_run_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclasses.dataclass(frozen=True)
class Kept:
    """Built worlds kept between runs (``--reuse DIR``): SQLite files in ``directory``,
    PostgreSQL template databases ``bench_<key>``; each with its ``World`` as JSON in
    ``directory``. The key names the backend, seed and size."""

    directory: Path

    def key(self, backend: str, seed: int, size: Size) -> str:
        return f"lists_{backend}_s{seed}_r{size.requests}_a{size.audit_events}_x{size.resources}"

    def find(self, backend: str, key: str) -> tuple[str, World] | None:
        meta = self.directory / f"{key}.json"
        if not meta.exists():
            return None
        world = World(**json.loads(meta.read_text()))
        if backend == "sqlite":
            path = self.directory / f"{key}.db"
            return (str(path), world) if path.exists() else None
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                 (f"bench_{key}",)).fetchone()  # fmt: skip
        return (f"bench_{key}", world) if found else None

    def keep(self, backend: str, key: str, db_url: str, world: World) -> None:
        """Copy the just-built database at ``db_url`` (nobody connected to it)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if backend == "sqlite":
            shutil.copyfile(db_url.removeprefix("sqlite:///"), self.directory / f"{key}.db")
        else:
            source = db_url.rsplit("/", 1)[1].split("?", 1)[0]
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "bench_{key}"')
                conn.execute(f'CREATE DATABASE "bench_{key}" TEMPLATE "{source}"')
        (self.directory / f"{key}.json").write_text(json.dumps(dataclasses.asdict(world)))


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
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() once the app started (an experiment: the server "
                        "does not do it)")  # fmt: skip
    parser.add_argument("--reuse", type=Path, default=None, metavar="DIR",
                        help="keep the built world (SQLite file in DIR, PostgreSQL template "
                        "database) and start from a copy of it next time")  # fmt: skip
    args = parser.parse_args(argv)
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    size = Size.quick() if args.quick else Size()
    kept = Kept(args.reuse) if args.reuse is not None else None
    results: dict[str, list[Row]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            start = time.perf_counter()
            key = kept.key(backend, args.seed, size) if kept else ""
            found = kept.find(backend, key) if kept else None
            if found is not None:
                with copy_of(backend, Path(tmp), found[0]) as url:
                    results[backend] = run(url, args.seed, quick=args.quick,
                                           samples=args.samples, built=found[1],
                                           gc_freeze=args.gc_freeze)  # fmt: skip
                out(f"{backend}: a kept world copied and measured in "
                    f"{time.perf_counter() - start:.0f} s")  # fmt: skip
                continue
            # a kept PostgreSQL world must be a database of its own (a template), not a schema
            fresh = copy_of(backend, Path(tmp), "template0") if kept and backend != "sqlite" \
                else database(backend, Path(tmp))  # fmt: skip
            with fresh as url:
                keep = partial(kept.keep, backend, key, url) if kept is not None else None
                results[backend] = run(url, args.seed, quick=args.quick, samples=args.samples,
                                       gc_freeze=args.gc_freeze,
                                       keep=keep)  # fmt: skip
            out(f"{backend}: built and measured in {time.perf_counter() - start:.0f} s")
    out(f"{size.requests:,} requests, {size.audit_events:,} audit events, "
        f"{size.resources:,} resources, {size.users:,} users, seed {args.seed}")  # fmt: skip
    out(table(results))


if __name__ == "__main__":
    configure_logging("WARNING", LogFormat.CONSOLE)  # a line per request would drown the table
    main()
