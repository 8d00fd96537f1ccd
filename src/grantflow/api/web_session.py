"""What the sign-in routes share (password, single sign-on, invitations): the session answer,
the session cookie, the cross-site check and the error a browser can act on."""

from __future__ import annotations

import html
from datetime import datetime
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from grantflow.api.deps import client_ip
from grantflow.api.errors import error_body
from grantflow.api.schemas.users import UserPublic
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.auth.web_sign_in import Browser
from grantflow.settings import Settings


class SessionPublic(BaseModel):
    authenticated: bool
    user: UserPublic | None = None
    csrf_token: str | None = Field(
        default=None, description="Send as X-CSRF-Token on every state-changing request"
    )
    expires_at: datetime | None = None
    oidc_enabled: bool = False


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A browser gets a small page it can act on; anything else gets the JSON error shape."""
    if wants_html(request):
        page = (
            "<!doctype html><html lang=en><meta charset=utf-8><title>Sign-in failed</title>"
            f"<h1>Sign-in failed</h1><p>{html.escape(message)}</p>"
            '<p><a href="/login">Back to sign-in</a></p></html>'
        )
        return HTMLResponse(page, status_code=status_code, headers=headers)
    return JSONResponse(error_body(code, message), status_code=status_code, headers=headers)


def set_session_cookie(
    response: Response, settings: Settings, new: web_sessions.NewSession
) -> None:
    response.set_cookie(
        web_sessions.cookie_name(settings.cookie_secure),
        new.secret,
        max_age=settings.session_max_age_seconds,
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def signed_in(
    request: Request, settings: Settings, user: UserPublic, new: web_sessions.NewSession
) -> JSONResponse:
    """The JSON answer to a sign-in that opened ``new``, with its cookie set."""
    payload = SessionPublic(
        authenticated=True,
        user=user,
        csrf_token=new.csrf_token,
        expires_at=new.expires_at,
        oidc_enabled=request.app.state.oidc is not None,
    )
    response = JSONResponse(payload.model_dump(mode="json"))
    set_session_cookie(response, settings, new)
    return response


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        web_sessions.cookie_name(settings.cookie_secure),
        path="/",
        secure=settings.cookie_secure,
        httponly=True,
        samesite="lax",
    )


def origin_allowed(request: Request, settings: Settings) -> bool:
    """Login CSRF: a browser's cross-site form post carries a foreign Origin; refuse it."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.url.netloc}"
    public = urlsplit(settings.base_url)
    return origin in {own, f"{public.scheme}://{public.netloc}"}


def browser(request: Request) -> Browser:
    """Where the request comes from, as a new web session records it."""
    return Browser(client_ip(request), request.headers.get("user-agent"))
