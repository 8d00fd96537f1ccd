"""boto3 clients for the demo builder: one endpoint, static test keys, assume-role per account.

moto selects the account from the credentials: the static keys are the management account
(moto's default account), and credentials from ``sts:AssumeRole`` into
``arn:aws:iam::<account>:role/OrganizationAccountAccessRole`` act in ``<account>``.

Making clients is the builder's biggest client-side cost: ~0.3 s from a fresh session (service
models are loaded per session) and still ~35 ms from a warm one (botocore builds a client class
per client). A thousand accounts with seven clients each would spend minutes there. So all
sessions share one model loader, and each worker thread keeps one session whose
``botocore.credentials.Credentials`` object it repoints at the account it is working on,
reusing one client per (service, region) for all of its accounts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.loaders import Loader

MEMBER_ROLE_NAME = "OrganizationAccountAccessRole"
_STATIC_KEY = "testing"
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=5,
    read_timeout=120,
)


class OrgBuildError(RuntimeError):
    """The emulated organization could not be built (an AWS call failed)."""


@dataclass
class AccountClients:
    """Clients cached per (service, region), all signing with ``session``'s credentials.

    Use from one thread only.
    """

    endpoint: str
    session: boto3.Session
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str | None = None) -> Any:  # boto3 clients are untyped
        key = (service, region or str(self.session.region_name))
        if key not in self._cache:
            self._cache[key] = self.session.client(
                service, region_name=key[1], endpoint_url=self.endpoint, config=_CONFIG
            )
        return self._cache[key]

    @property
    def credentials(self) -> Credentials:
        credentials = self.session.get_credentials()
        assert credentials is not None  # the session is always made with explicit keys
        return credentials


@dataclass
class ClientFactory:
    """Hands out clients for the management account and, per worker thread, member accounts."""

    endpoint: str
    region: str
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _loader: Loader | None = field(default=None, repr=False)

    def _new(self, access_key: str, secret_key: str) -> AccountClients:
        core = botocore.session.get_session()
        if self._loader is None:  # a benign race: at worst two threads each load the models
            self._loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", self._loader)
        session = boto3.Session(
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=self.region,
            botocore_session=core,
        )
        return AccountClients(self.endpoint, session)

    def management(self) -> AccountClients:
        """Management-account clients for the calling thread."""
        clients: AccountClients | None = getattr(self._local, "management", None)
        if clients is None:
            clients = self._new(_STATIC_KEY, _STATIC_KEY)
            self._local.management = clients
        return clients

    def member(self, account_id: str) -> AccountClients:
        """Assume the organization's access role in ``account_id``.

        The returned clients belong to the calling thread and act in ``account_id`` until the
        thread's next ``member`` call.
        """
        response = (
            self.management()
            .client("sts")
            .assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/{MEMBER_ROLE_NAME}",
                RoleSessionName="grantflow-demo-builder",
            )
        )
        raw = response["Credentials"]
        clients: AccountClients | None = getattr(self._local, "member", None)
        if clients is None:
            clients = self._new(raw["AccessKeyId"], raw["SecretAccessKey"])
            self._local.member = clients
        credentials = clients.credentials
        credentials.access_key = raw["AccessKeyId"]
        credentials.secret_key = raw["SecretAccessKey"]
        credentials.token = raw["SessionToken"]
        return clients
