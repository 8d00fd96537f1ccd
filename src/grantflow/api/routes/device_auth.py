"""CLI sign-in by the OAuth 2.0 device authorization grant (RFC 8628); no credentials needed.

``POST /api/v1/auth/device`` starts a sign-in (limited per client IP): a device code for the
CLI to poll with and a user code for the person to type at ``verification_uri`` in a browser
where they are signed in. There is deliberately no ``verification_uri_complete``: a URL that
carries the code would let anyone send a ready-made sign-in for someone else to approve.

``POST /api/v1/auth/device/token`` polls: 400 with the RFC's error code (``authorization_pending``,
``slow_down`` with the new ``interval``, ``access_denied``, ``expired_token``, ``invalid_grant``)
until the sign-in is approved; then, once, a personal API token.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from grantflow.api.deps import Ctx, client_ip
from grantflow.api.errors import ErrorResponse, error_body
from grantflow.domain import device_login as dl
from grantflow.services.audit import trail as audit
from grantflow.services.auth import device_login

router = APIRouter(prefix="/api/v1/auth/device", tags=["sign-in"])
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class DeviceStart(BaseModel):
    label: str = Field(
        default="", max_length=255, description="Names the machine on the approval page"
    )


class DeviceAuthorizationPublic(BaseModel):
    device_code: str = Field(description="The CLI's secret to poll with; never shown to people")
    user_code: str = Field(description="What the person types at verification_uri: XXXX-XXXX")
    verification_uri: str
    expires_in: int = Field(description="Seconds until both codes expire")
    interval: int = Field(description="Seconds to wait between polls")


class DeviceTokenRequest(BaseModel):
    device_code: str = Field(min_length=1, max_length=255)


class DeviceToken(BaseModel):
    access_token: str = Field(description="A personal API token. Shown once.")
    token_type: str = "bearer"  # noqa: S105 - the RFC 6750 token type, not a secret
    expires_in: int
    username: str


def _error(
    status: int, code: str, message: str, *, interval: int | None = None,
    retry_after: int | None = None,
) -> JSONResponse:  # fmt: skip
    headers = dict(NO_STORE)
    body = error_body(code, message)
    if interval is not None:
        body["error"]["interval"] = interval
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "",
    response_model=DeviceAuthorizationPublic,
    summary="Start a CLI sign-in (RFC 8628 device authorization request)",
    responses={429: {"model": ErrorResponse, "description": "too many from this address"}},
)
async def start(ctx: Ctx, request: Request, body: DeviceStart) -> Response:
    actor = audit.Actor("user", None, "api", getattr(request.state, "request_id", None))
    try:
        started = await run_in_threadpool(
            device_login.start, ctx.sessions, body.label, client_ip(request),
            request.headers.get("user-agent"), actor,
        )  # fmt: skip
    except device_login.TooManySignIns as err:
        return _error(err.status, err.code, err.message, retry_after=err.retry_after_seconds)
    public = DeviceAuthorizationPublic(
        device_code=started.device_code,
        user_code=started.user_code,
        verification_uri=ctx.settings.base_url.rstrip("/") + dl.VERIFICATION_PATH,
        expires_in=started.expires_in,
        interval=started.interval,
    )
    return JSONResponse(public.model_dump(), headers=NO_STORE)


@router.post(
    "/token",
    response_model=DeviceToken,
    summary="Poll a CLI sign-in (RFC 8628 device access token request)",
    responses={
        400: {
            "model": ErrorResponse,
            "description": "No token (yet): error.code is authorization_pending, slow_down "
            "(with error.interval), access_denied, expired_token or invalid_grant",
        }
    },
)
async def token(ctx: Ctx, request: Request, body: DeviceTokenRequest) -> Response:
    request_id = getattr(request.state, "request_id", None)
    try:
        issued = await run_in_threadpool(
            device_login.poll, ctx.sessions, body.device_code, request_id
        )
    except device_login.PollRefused as err:
        return _error(err.status, err.code, err.message, interval=err.interval_seconds)
    public = DeviceToken(
        access_token=issued.token.plaintext,
        expires_in=int(dl.TOKEN_LIFETIME.total_seconds()),
        username=issued.username,
    )
    return JSONResponse(public.model_dump(), headers=NO_STORE)
