"""Slack's interactivity request URL: Approve / Reject clicked on a Grantflow message.

Authenticated by Slack's request signature (the app's signing secret), not by a Grantflow
token: ``SlackSigned`` refuses a missing, wrong or stale signature with 401 before anything
is read. A valid click is answered 200 at once; the decision and the reply to the clicker
(through the payload's ``response_url``) follow as a background task.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import parse_qs

import structlog
from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from grantflow.api.deps import Ctx
from grantflow.api.errors import error_body
from grantflow.notify import slack_actions
from grantflow.notify.slack import build_client
from grantflow.services.notifications import slack_decisions
from grantflow.store.db import DatabaseUnavailable

router = APIRouter(prefix="/api/slack", tags=["slack"])
log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 64 * 1024


async def slack_signed_body(ctx: Ctx, request: Request) -> bytes:
    """The raw body of a request Slack signed, or 401 (404 when Slack is not configured)."""
    secret = ctx.settings.slack_signing_secret
    if secret is None:
        raise HTTPException(
            status_code=404,
            detail="Slack is not configured on this server (GRANTFLOW_SLACK_SIGNING_SECRET)",
        )
    body = await request.body()
    valid = len(body) <= MAX_BODY_BYTES and slack_actions.signature_ok(
        secret.get_secret_value(),
        body,
        request.headers.get("X-Slack-Request-Timestamp"),
        request.headers.get("X-Slack-Signature"),
        window_seconds=ctx.settings.slack_replay_window_seconds,
        now=time.time(),
    )
    if not valid:
        log.warning("slack_signature_refused", client=request.client.host if request.client
                    else None)  # fmt: skip
        raise HTTPException(status_code=401, detail="invalid Slack request signature")
    return body


SlackSigned = Annotated[bytes, Depends(slack_signed_body)]


@router.post(
    "/actions",
    summary="Slack interactivity: Approve / Reject buttons (signed by Slack)",
    response_class=Response,
    responses={200: {"description": "Acknowledged; the clicker is answered via response_url"},
               401: {"description": "Missing, wrong or stale Slack signature"},
               404: {"description": "Slack is not configured"}},
)  # fmt: skip
def actions(body: SlackSigned, ctx: Ctx, request: Request, tasks: BackgroundTasks) -> Response:
    payload = parse_qs(body.decode("utf-8", errors="replace")).get("payload", [""])[0]
    try:
        click = slack_actions.parse(payload)
    except slack_actions.BadPayload as err:
        return _json(400, error_body("bad_request", str(err)))
    if click is None:
        return Response(status_code=200)  # an interaction that is not ours: acknowledge it
    client = build_client(ctx.settings)
    if client is None:
        return _json(503, error_body("unavailable", "Slack has no bot token on this server "
                                     "(GRANTFLOW_SLACK_BOT_TOKEN)"))  # fmt: skip
    request_id = getattr(request.state, "request_id", None)

    def decide_and_reply() -> None:
        try:
            reply = slack_decisions.decide(
                click, client, ctx.sessions, ctx.settings.base_url, request_id
            )
        except (DatabaseUnavailable, SQLAlchemyError) as err:
            log.error("slack_decision_failed", request_id=click.request_id,
                      error=type(err).__name__)  # fmt: skip
            reply = slack_actions.Reply("Grantflow could not record your decision (its database "
                                        "did not answer). Nothing changed; try again.")  # fmt: skip
        if click.response_url:
            slack_actions.respond(click.response_url, reply)
        else:
            log.warning("slack_click_without_response_url", request_id=click.request_id)

    tasks.add_task(decide_and_reply)
    return Response(status_code=200)


def _json(status: int, content: dict[str, object]) -> Response:
    return JSONResponse(status_code=status, content=content)
