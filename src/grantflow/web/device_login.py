"""The fixed page where a signed-in person types a CLI's user code, then approves or denies.

``GET /device`` shows an empty field (it reads nothing from its URL, so no link can fill in
a code for anyone); ``POST /device`` looks the typed code up and shows where and when that
sign-in started; ``POST /device/decision`` approves or denies it. Both posts need the browser
session and its CSRF field; a bearer token cannot approve a sign-in. See
`grantflow.services.auth.device_approval` for the limits on wrong codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from grantflow.api.deps import Ctx, CurrentUser, actor_of, client_ip
from grantflow.domain import device_login as dl
from grantflow.services.auth import device_approval
from grantflow.services.errors import ServiceError
from grantflow.store.types import utcnow
from grantflow.web.pages import MaybeViewer, Viewer, render

router = APIRouter(include_in_schema=False)
TEMPLATE = "portal/device.html"
CodeField = Annotated[str, Form(max_length=32)]


def _ago(moment: datetime) -> str:
    seconds = max(0, int((utcnow() - moment).total_seconds()))
    if seconds < 60:
        return f"{seconds} s ago"
    return f"{seconds // 60} min {seconds % 60} s ago"


def _details(pending: device_approval.PendingSignIn) -> dict[str, str]:
    return {
        "started": pending.created_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        "ago": _ago(pending.created_at),
        "expires": pending.expires_at.strftime("%H:%M:%S UTC"),
    }


def _problem(request: Request, viewer: Viewer, err: ServiceError, code: str) -> Response:
    headers = {}
    if isinstance(err, device_approval.TooManyWrongCodes):
        headers["Retry-After"] = str(err.retry_after_seconds)
    response = render(request, TEMPLATE, viewer, status_code=err.status, problem=err.message,
                      typed=code)  # fmt: skip
    response.headers.update(headers)
    return response


def _not_a_browser(request: Request) -> Response:
    """A sign-in is decided by a person in a browser session, never by a bearer token."""
    return render(request, TEMPLATE, None, status_code=403,
                  problem="approve a CLI sign-in in a browser where you are signed in")  # fmt: skip


@router.get(dl.VERIFICATION_PATH)
def device_page(request: Request, viewer: MaybeViewer) -> Response:
    if viewer is None:
        return RedirectResponse(f"/login?next={dl.VERIFICATION_PATH}", status_code=303)
    return render(request, TEMPLATE, viewer, typed="")


@router.post(dl.VERIFICATION_PATH)
async def device_lookup(
    request: Request, ctx: Ctx, principal: CurrentUser, viewer: MaybeViewer, user_code: CodeField
) -> Response:
    """CurrentUser enforces the session's CSRF field on this cookie-authenticated form."""
    if viewer is None:
        return _not_a_browser(request)
    actor = actor_of(principal, request)
    try:
        pending = await run_in_threadpool(
            device_approval.find, ctx.sessions, principal.id, user_code, actor
        )
    except ServiceError as err:
        return _problem(request, viewer, err, user_code)
    return render(request, TEMPLATE, viewer, pending=pending, your_ip=client_ip(request),
                  when=_details(pending))  # fmt: skip


@router.post(f"{dl.VERIFICATION_PATH}/decision")
async def device_decision(
    request: Request,
    ctx: Ctx,
    principal: CurrentUser,
    viewer: MaybeViewer,
    user_code: CodeField,
    decision: Annotated[Literal["approve", "deny"], Form()],
) -> Response:
    if viewer is None:
        return _not_a_browser(request)
    actor = actor_of(principal, request)
    try:
        decided = await run_in_threadpool(
            device_approval.decide, ctx.sessions, principal.id, user_code,
            decision == "approve", actor,
        )  # fmt: skip
    except ServiceError as err:
        return _problem(request, viewer, err, user_code)
    return render(request, TEMPLATE, viewer, decided=decided, approved=decision == "approve")
