"""The AWS fault injector: what it injects is what botocore and Grantflow see from real AWS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from grantflow.aws import faults
from grantflow.aws.errors import AwsUnavailable, Conflict, Throttled, translate
from grantflow.aws.session import ClientFactory, ClientSettings
from grantflow.demo.moto_server import MotoServer


def _factory(spec: str, attempts: int = 1) -> ClientFactory:
    injector = faults.FaultInjector(faults.FaultSpec.parse(spec))
    return ClientFactory.from_environment(
        settings=ClientSettings(max_attempts=attempts, faults=injector)
    )


def test_spec_parses_lists_and_rejects_nonsense() -> None:
    spec = faults.FaultSpec.parse("rate=0.2,seed=7,kinds=throttle,500,503,services=sts,iam")
    assert (spec.rate, spec.seed, spec.kinds) == (0.2, 7, ("throttle", "500", "503"))
    assert spec.services == frozenset({"sts", "iam"})
    for bad in ("rate=2", "kinds=meteor", "colour=red", "throttle", "rate=x"):
        with pytest.raises(faults.FaultInjectionRefused):
            faults.FaultSpec.parse(bad)


@pytest.mark.parametrize(
    ("kind", "service", "expected"),
    [
        ("throttle", "sso-admin", Throttled),
        ("toomany", "sso-admin", Throttled),
        ("500", "sso-admin", AwsUnavailable),
        ("503", "sts", AwsUnavailable),  # a query-protocol (XML) error body
        ("throttle", "sts", Throttled),
    ],
)
def test_error_responses_parse_like_aws(
    aws: MotoServer, kind: str, service: str, expected: type
) -> None:
    client = _factory(f"rate=1,kinds={kind}").client(service)
    with pytest.raises(ClientError) as caught:
        if service == "sts":
            client.get_caller_identity()
        else:
            client.list_instances()
    assert isinstance(translate(caught.value, action="x"), expected)


def test_conflict_only_on_mutating_operations(aws: MotoServer) -> None:
    factory = _factory("rate=1,kinds=conflict")
    factory.client("sso-admin").list_instances()  # a read: never a conflict
    with pytest.raises(ClientError) as caught:
        factory.client("sso-admin").create_instance(Name="x")
    assert caught.value.response["Error"]["Code"] == "ConflictException"
    assert isinstance(translate(caught.value, action="x"), Conflict)


def test_connection_errors(aws: MotoServer) -> None:
    with pytest.raises(ConnectionClosedError):
        _factory("rate=1,kinds=reset").client("sts").get_caller_identity()
    with pytest.raises(EndpointConnectionError):
        _factory("rate=1,kinds=unreachable").client("sts").get_caller_identity()


def test_botocore_retries_absorb_faults_and_stats_are_written(
    aws: MotoServer, tmp_path: Path
) -> None:
    stats = tmp_path / "faults.json"
    factory = _factory(f"rate=0.3,seed=3,kinds=throttle,500,reset,stats={stats}", attempts=8)
    for _ in range(40):
        factory.client("sts").get_caller_identity()
    got = json.loads(stats.read_text())
    assert got["calls"] == 40
    assert got["retries"] == sum(got["faults"].values()) > 0
    assert got["attempts"] == 40 + got["retries"]
    assert got["operations"] == {"sts.GetCallerIdentity": 40}


def test_same_seed_same_faults(aws: MotoServer) -> None:
    def run(seed: int) -> list[bool]:
        client = _factory(f"rate=0.5,seed={seed},kinds=500").client("sts")
        out = []
        for _ in range(20):
            try:
                client.get_caller_identity()
                out.append(True)
            except ClientError:
                out.append(False)
        return out

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_refused_against_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://sso.us-east-1.amazonaws.com")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    injector = faults.FaultInjector(faults.FaultSpec.parse("rate=0.1"))
    factory = ClientFactory.from_environment(settings=ClientSettings(faults=injector))
    with pytest.raises(faults.FaultInjectionRefused):
        factory.client("sts")
    monkeypatch.setenv(faults.ENV_VAR, "rate=0.1")
    with pytest.raises(faults.FaultInjectionRefused):
        ClientFactory.from_environment()
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(faults.FaultInjectionRefused):
        ClientFactory.from_environment()


def test_off_by_default(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(faults.ENV_VAR, raising=False)
    assert ClientFactory.from_environment().settings.faults is None
    monkeypatch.setenv(faults.ENV_VAR, "rate=1,kinds=500")
    factory = ClientFactory.from_environment(settings=ClientSettings(max_attempts=1))
    assert factory.settings.faults is not None
    assert factory.assume_role("arn:aws:iam::123456789012:role/r").settings.faults is not None
    with pytest.raises(ClientError):
        factory.client("sts").get_caller_identity()
