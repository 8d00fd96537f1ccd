"""The request page says when the user's existing AWS sessions were ended and when the block
was lifted (the API's grants[].session_cut), in a real browser."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import expect
from sqlalchemy import select, update

from grantflow.store.db import build_engine, session_factory, transaction
from grantflow.store.models import Grant
from grantflow.store.models_session_cuts import SessionCut
from grantflow.store.types import utcnow
from tests.fixtures.live import LiveServer
from tests.web import world
from tests.web.conftest import Tab, set_password

TabFactory = Callable[[str], Tab]

PS = "arn:aws:sso:::permissionSet/ssoins-1111111111111111/ps-1111111111111111"


def _cut(live: LiveServer, integration_id: str, request_id: str) -> None:
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            grant = session.scalars(select(Grant).where(Grant.request_id == request_id)).one()
            now = utcnow()
            session.add(SessionCut(
                integration_id=integration_id, request_id=request_id, grant_id=grant.id,
                tuple_key="k", instance_arn="arn:aws:sso:::instance/ssoins-1111111111111111",
                permission_set_arn=PS, managed=False, account_id="111111111111",
                principal_id="u-1", user_name="grace", not_before=now, state="active",
                cut_at=now, release_after=world.hours(1),
            ))  # fmt: skip
    finally:
        engine.dispose()


def _release(live: LiveServer) -> None:
    engine = build_engine(live.db_url)
    try:
        with transaction(session_factory(engine)) as session:
            session.execute(update(SessionCut).values(state="released", released_at=utcnow()))
    finally:
        engine.dispose()


def test_the_request_shows_when_sessions_were_ended_and_the_block_lifted(
    live_server: LiveServer, open_tab: TabFactory
) -> None:
    seeded = world.integration(live_server, "Acme")
    grace = set_password(live_server.db_url, "grace")
    ended = world.access_request(
        live_server, seeded, grace, "revoked", granted_at=world.hours(-1),
        expires_at=world.hours(1), ended_at=utcnow(), end_reason="revoked",
    )  # fmt: skip
    _cut(live_server, seeded.integration_id, ended)
    tab = open_tab(live_server.url)
    tab.sign_in("grace")
    tab.goto(f"/requests/{ended}")
    cut = tab.page.get_by_test_id("session-cut")
    expect(cut).to_have_attribute("data-state", "active")
    expect(cut).to_contain_text("were ended")
    expect(cut).to_contain_text("the block is lifted after")
    tab.shot("request-sessions-ended")
    _release(live_server)
    tab.goto(f"/requests/{ended}")
    expect(cut).to_have_attribute("data-state", "released")
    expect(cut).to_contain_text("the block was lifted")
    tab.assert_no_errors()
