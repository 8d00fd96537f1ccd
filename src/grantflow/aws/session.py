"""The one session and client factory every AWS call in Grantflow goes through.

A :class:`ClientFactory` wraps a boto3 session and hands out clients with standard retry mode
and explicit timeouts. :meth:`ClientFactory.assume_role` returns a factory for another role
whose credentials refresh themselves before they expire, so role chains (connector role →
management role with an external id → member role) outlive the one-hour limit on chained
sessions. Endpoints come from boto3's own configuration: ``AWS_ENDPOINT_URL`` (and the
per-service ``AWS_ENDPOINT_URL_<SERVICE>``) point every client at an emulator such as moto.

Each factory counts the calls its clients make, per ``(service, operation)``; counts also
flow up to the factory it was assumed from, so the root factory sees the whole chain.

Every assumed role's botocore session shares the process's one loader (and the endpoint
resolver and exception classes built from its data): a service model is parsed once per
process, not once per account a sync reads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import CredentialResolver, DeferredRefreshableCredentials
from botocore.exceptions import BotoCoreError, ClientError

from grantflow.aws import emulated_async as ic_async
from grantflow.aws import faults as fault_injection
from grantflow.aws.errors import translate

DEFAULT_REGION = "us-east-1"
CHAINED_SESSION_SECONDS = 3600  # AWS caps role-chained sessions at one hour
_SESSION_NAME_MAX = 64


@dataclass(frozen=True)
class ClientSettings:
    """Retry and timeout settings applied to every client a factory makes.

    ``max_attempts`` counts the first attempt too (botocore's ``total_max_attempts``).
    """

    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    # Testing only: GRANTFLOW_FAULT_INJECTION (see grantflow.aws.faults); never set in production.
    faults: fault_injection.FaultInjector | None = field(default=None, compare=False)
    # Testing only: GRANTFLOW_EMULATE_IC_ASYNC (see grantflow.aws.emulated_async).
    emulated_async: ic_async.AsyncEmulator | None = field(default=None, compare=False)

    def botocore_config(self) -> Config:
        return Config(
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


@dataclass(frozen=True)
class CallerIdentity:
    """Who a session is, per ``sts:GetCallerIdentity``."""

    account: str
    arn: str
    user_id: str


class CallCounter:
    """Counts AWS API calls per ``(service, operation)``; thread safe."""

    def __init__(self, parent: CallCounter | None = None) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._parent = parent

    def record(self, service: str, operation: str) -> None:
        with self._lock:
            self._counts[(service, operation)] += 1
        if self._parent is not None:
            self._parent.record(service, operation)

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

    def operations(self) -> frozenset[tuple[str, str]]:
        with self._lock:
            return frozenset(self._counts)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def hook(self, service: str) -> Callable[..., None]:
        """A botocore ``before-call`` handler that records calls of ``service``."""

        def _before_call(model: Any, **_: Any) -> None:
            self.record(service, str(model.name))

        return _before_call


class _StaticProvider:
    """A botocore credential provider that always returns the same credentials object."""

    METHOD = "grantflow-assume-role"
    CANONICAL_NAME = "custom-grantflow-assume-role"

    def __init__(self, credentials: DeferredRefreshableCredentials) -> None:
        self._credentials = credentials

    def load(self) -> DeferredRefreshableCredentials:
        return self._credentials


class ClientFactory:
    """Makes boto3 clients for one AWS identity. Pass it in; never build clients elsewhere."""

    def __init__(
        self,
        session: boto3.Session | _CoreSession,
        *,
        region: str | None = None,
        settings: ClientSettings | None = None,
        counter: CallCounter | None = None,
        role_arn: str | None = None,
    ) -> None:
        self._session = session
        self.region = region or session.region_name or DEFAULT_REGION
        self.settings = settings or ClientSettings()
        self.calls = counter or CallCounter()
        self.role_arn = role_arn
        self._clients: dict[tuple[str, str], BaseClient] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, *, region: str | None = None, settings: ClientSettings | None = None
    ) -> ClientFactory:
        """A factory over boto3's default credential chain (env, profile, instance role…)."""
        injector = fault_injection.from_environment()
        if injector is not None:
            settings = replace(settings or ClientSettings(), faults=injector)
        emulator = ic_async.from_environment()
        if emulator is not None:
            settings = replace(settings or ClientSettings(), emulated_async=emulator)
        return cls(boto3.Session(region_name=region), region=region, settings=settings)

    def client(self, service: str, *, region: str | None = None) -> BaseClient:
        """A client for ``service``; made once per (service, region) and reused (thread safe)."""
        key = (service, region or self.region)
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._new_client(*key)
            return self._clients[key]

    def _new_client(self, service: str, region: str) -> BaseClient:
        client = self._session.client(
            service, region_name=region, config=self.settings.botocore_config()
        )
        # Each client has its own copy of the event emitter: this counts this client only.
        client.meta.events.register("before-call", self.calls.hook(service))
        if self.settings.faults is not None:
            self.settings.faults.install(client, service)
        if self.settings.emulated_async is not None:
            # Due operations reach the emulator through a plain client: uncounted, no faults,
            # no retries (the emulator looks before sending an operation again).
            config = replace(self.settings, max_attempts=1).botocore_config()
            self.settings.emulated_async.install(
                client,
                service,
                lambda: self._session.client(service, region_name=region, config=config),
            )
        return client

    def caller_identity(self) -> CallerIdentity:
        try:
            found = self.client("sts").get_caller_identity()
        except (ClientError, BotoCoreError) as e:
            raise translate(e, action="sts:GetCallerIdentity", role_arn=self.role_arn) from e
        return CallerIdentity(account=found["Account"], arn=found["Arn"], user_id=found["UserId"])

    def assume_now(self) -> None:
        """Fetch this factory's credentials now (for an assumed role: call ``AssumeRole``),
        so that a refused role fails here, translated, without an extra call to learn it."""
        try:
            credentials = self._session.get_credentials()
            if credentials is not None:
                credentials.get_frozen_credentials()
        except (ClientError, BotoCoreError) as e:
            raise translate(e, action="sts:AssumeRole", role_arn=self.role_arn) from e

    def assume_role(
        self,
        role_arn: str,
        external_id: str | None = None,
        session_name: str = "grantflow",
        *,
        duration_seconds: int = CHAINED_SESSION_SECONDS,
    ) -> ClientFactory:
        """A factory for ``role_arn`` whose credentials refresh themselves before expiry.

        Nothing is called until the first client call; an ``AccessDenied`` for
        ``sts:AssumeRole`` (wrong trust policy or external id) surfaces there.
        """
        refresher = _assume_role_refresher(
            self, role_arn, external_id, session_name[:_SESSION_NAME_MAX], duration_seconds
        )
        credentials = DeferredRefreshableCredentials(refresh_using=refresher, method="assume-role")
        core = _shared_components(botocore.session.Session())
        core.register_component(
            "credential_provider", CredentialResolver([_StaticProvider(credentials)])
        )
        return ClientFactory(
            _CoreSession(core, self.region),
            region=self.region,
            settings=self.settings,
            counter=CallCounter(parent=self.calls),
            role_arn=role_arn,
        )


class _CoreSession:
    """What a factory needs of a boto3 session, over a plain botocore session: an assumed
    role's session shares the process's loader, and ``boto3.Session`` would add its data path
    to that shared loader once more for each role assumed."""

    def __init__(self, core: botocore.session.Session, region: str) -> None:
        self._core = core
        self.region_name = region

    def client(self, service: str, *, region_name: str, config: Config) -> BaseClient:
        return self._core.create_client(service, region_name=region_name, config=config)

    def get_credentials(self) -> Any:
        return self._core.get_credentials()


_SHARED: dict[str, tuple[Any, ...]] = {}
_SHARED_LOCK = threading.Lock()
# Components every botocore session of the process may share: they hold what botocore read
# from its data files (service models, endpoint rules, partitions, defaults) or build from
# it (exception classes), and change only by caching more of it.
_SHARED_COMPONENTS = ("data_loader", "response_parser_factory")
_SHARED_INTERNAL = ("endpoint_resolver", "exceptions_factory", "default_config_resolver")


def _shared_components(core: botocore.session.Session) -> botocore.session.Session:
    """``core``, reusing the one loader (and what is built from its data) of the process.

    Without it each assumed role's session parses the service models of every client it
    makes again (EC2's alone is megabytes of JSON): a sync reading accounts eight at a time
    held eight copies and spent most of its CPU parsing them.
    """
    with _SHARED_LOCK:  # lazy components are made on first use: once, under the lock
        if not _SHARED:
            source = botocore.session.Session()
            _SHARED["public"] = tuple(source.get_component(n) for n in _SHARED_COMPONENTS)
            # botocore has no public way to share its internal components.
            _SHARED["internal"] = tuple(source._get_internal_component(n) for n in _SHARED_INTERNAL)
    for name, component in zip(_SHARED_COMPONENTS, _SHARED["public"], strict=True):
        core.register_component(name, component)
    for name, component in zip(_SHARED_INTERNAL, _SHARED["internal"], strict=True):
        core._register_internal_component(name, component)
    return core


def _assume_role_refresher(
    parent: ClientFactory,
    role_arn: str,
    external_id: str | None,
    session_name: str,
    duration_seconds: int,
) -> Callable[[], Mapping[str, str]]:
    def refresh() -> Mapping[str, str]:
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": duration_seconds,
        }
        if external_id is not None:
            params["ExternalId"] = external_id
        try:
            found = parent.client("sts").assume_role(**params)["Credentials"]
        except (ClientError, BotoCoreError) as e:
            raise translate(e, action="sts:AssumeRole", role_arn=role_arn) from e
        return {
            "access_key": found["AccessKeyId"],
            "secret_key": found["SecretAccessKey"],
            "token": found["SessionToken"],
            "expiry_time": found["Expiration"].isoformat(),
        }

    return refresh
