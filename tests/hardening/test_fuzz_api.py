"""Schemathesis over the app's whole OpenAPI document, in process (ASGI), as admin and member.

Every operation gets generated requests, valid by the schema and not, sent with an admin's
and a member's personal token. Checks: no 5xx and, for every documented status, a body that
matches the documented schema. Random path ids mostly answer 404, so a second pass fixes the
path parameters to objects that exist (tests/fixtures/seed.py: a connector with a job, an
integration with a resource, a flow, a pending request by the member, a group), runs the
destructive operations last, and also calls the connector protocol with the connector's
token and SCIM with a SCIM token.

Deterministic (derandomized) and bounded: ``GRANTFLOW_FUZZ_EXAMPLES`` examples per operation,
mode and caller (``make hardening`` raises it). All failures are collected and reported
together, one entry per operation and caller.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from grantflow.api.app import create_app
from grantflow.api.routes import access_requests
from grantflow.services.runtime.startup import prepare_database
from tests.fixtures.api import make_settings
from tests.fixtures.seed import seed_world

EXAMPLES = int(os.environ.get("GRANTFLOW_FUZZ_EXAMPLES", "4"))
VERBOSE = bool(os.environ.get("GRANTFLOW_FUZZ_VERBOSE"))  # name each operation as it starts
CHECKS = [not_a_server_error, response_schema_conformance]
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclass
class Fuzzed:
    schema: Any
    tokens: dict[str, str]
    ids: dict[str, str]
    calls: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    db = Path(tmp_path_factory.mktemp("fuzz")) / "grantflow.db"
    app_settings = make_settings(f"sqlite:///{db}")
    prepare_database(app_settings)
    app = create_app(app_settings, run_workers=False)
    world = seed_world(app)
    tokens = {"admin": world.tokens["admin"], "member": world.tokens["requester"]}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    yield Fuzzed(schema, tokens | {k: world.tokens[k] for k in ("connector", "scim")}, world.ids)
    app.state.ctx.engine.dispose()


def _fuzz_operation(
    run: Fuzzed, operation: Any, caller: str, mode: GenerationMode, real_ids: bool = False
) -> None:
    auth = {"Authorization": f"Bearer {run.tokens[caller]}"}
    path_names = [p.name for p in operation.path_parameters]
    # A parameter this test does not seed yet (a route added since) stays generated.
    fixed = {name: run.ids[name] for name in path_names if name in run.ids} if real_ids else None

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    def run_one(case: Any) -> None:
        run.calls += 1
        if operation.path.endswith("/jobs/lease") and isinstance(case.body, dict):
            wait = case.body.get("wait_seconds", 20)  # a long-poll: 20 s unless told
            if isinstance(wait, int | float) and not isinstance(wait, bool):
                case.body["wait_seconds"] = min(wait, 0.2)
        response = case.call(headers=auth)
        run.statuses[response.status_code] = run.statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=auth)

    if VERBOSE:
        print(f"fuzz {operation.label} [{caller}, {mode.value}, real ids={real_ids}]", flush=True)
    try:
        run_one()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing in this operation can be made invalid
    except Exception as err:  # noqa: BLE001 - every failure is collected and reported below
        where = "real ids" if real_ids else "random ids"
        run.failures[f"{operation.label} [{caller}, {mode.value}, {where}]"] = str(err)[:3000]


def _operations(run: Fuzzed) -> list[Any]:
    operations = [result.ok() for result in run.schema.get_all_operations()]
    assert len(operations) > 80  # the whole API, not a filtered corner of it
    return operations


def _callers(path: str) -> tuple[str, ...]:
    if path.startswith("/scim/v2"):
        return ("admin", "member", "scim")
    if path.startswith("/api/v1/connectors/{connector_id}/") and not path.endswith(
        ("/rotate-token", "/verify", "/ping", "/jobs", "/cloudformation")
    ):
        return ("admin", "member", "connector")
    return ("admin", "member")


def _destructive_last(operation: Any) -> tuple[bool, str]:
    destructive = operation.method.upper() == "DELETE" or operation.path.endswith(
        ("/rotate-token", "/revoke", "/reject", "/cancel", "/disable")
    )
    return destructive, operation.label


def test_every_operation_survives_fuzzing_as_admin_and_member(
    fuzzed: Fuzzed, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_requests, "PLAN_WAIT_SECONDS", 0.3)  # no connector runs here
    operations = _operations(fuzzed)
    for operation in operations:
        for caller in ("admin", "member"):
            for mode in MODES:
                _fuzz_operation(fuzzed, operation, caller, mode)
    with_ids = sorted((op for op in operations if op.path_parameters), key=_destructive_last)
    for operation in with_ids:
        for caller in _callers(operation.path):
            for mode in MODES:
                _fuzz_operation(fuzzed, operation, caller, mode, real_ids=True)
    report = "\n\n".join(f"{label}: {text}" for label, text in sorted(fuzzed.failures.items()))
    print(
        f"fuzzed {len(operations)} operations ({len(with_ids)} also with real ids): "
        f"{fuzzed.calls} requests, statuses {dict(sorted(fuzzed.statuses.items()))}"
    )
    assert fuzzed.failures == {}, f"{len(fuzzed.failures)} failing cells:\n{report}"
    assert fuzzed.calls >= len(operations) * 2 * len(MODES)
    assert sum(n for status, n in fuzzed.statuses.items() if status < 300) > len(operations)
