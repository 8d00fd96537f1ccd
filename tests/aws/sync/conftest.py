"""One small emulated organization per test module, shared read-only by its tests.

Building the small organization costs ~18 s, and a discovery sync only reads, so the tests of
a module share one build instead of rebuilding it per test (``small_org`` from
tests/fixtures/org.py would). The fixture resets moto before building and points the standard
``AWS_*`` variables at it for the module; every test using it must leave moto unchanged.
Failures are injected per client (tests/aws/sync/faults.py), never by changing moto's state.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from grantflow.demo.moto_server import MotoServer
from grantflow.demo.org import build_org
from grantflow.demo.org_shape import OrgShape
from grantflow.demo.org_summary import OrgSummary


@pytest.fixture(scope="module")
def shared_small_org(moto: MotoServer) -> Iterator[OrgSummary]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.delenv("AWS_PROFILE", raising=False)
        moto.reset()
        yield build_org(moto.endpoint, OrgShape.small())
        moto.reset()
