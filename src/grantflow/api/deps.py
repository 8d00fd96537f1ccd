"""Authentication and authorization as FastAPI dependencies; handlers never check inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from grantflow.api.context import AppContext
from grantflow.domain.authz import Principal, Requirement, authorize
from grantflow.services.audit import trail as audit
from grantflow.services.auth import sessions as web_sessions
from grantflow.services.auth import tokens
from grantflow.store.db import transaction

_bearer = HTTPBearer(auto_error=False, description="A Grantflow API, connector or SCIM token")


def get_ctx(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token a state-changing request carries: header first, then form field.
    The form is read only for cookie-carrying form posts (Starlette caches it for the route)."""
    header = request.headers.get(web_sessions.CSRF_HEADER)
    if header:
        return header
    if request.method in web_sessions.SAFE_METHODS or not request.cookies:
        return None
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    value = (await request.form()).get(web_sessions.CSRF_FORM_FIELD)
    return value if isinstance(value, str) else None


def current_principal(
    ctx: Ctx,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    csrf: Annotated[str | None, Depends(submitted_csrf)],
) -> Principal | None:
    """Bearer token first; else the web session cookie. A cookie-authenticated request that
    changes state must carry the session's CSRF token (bearer requests are exempt: browsers
    never attach them on their own)."""
    if credentials is not None:
        if credentials.scheme.lower() != "bearer":
            return None
        request.state.auth_method = "bearer"
        with transaction(ctx.sessions) as session:
            return tokens.resolve_bearer(session, credentials.credentials)
    secret = request.cookies.get(web_sessions.cookie_name(ctx.settings.cookie_secure))
    if not secret:
        return None
    with transaction(ctx.sessions) as session:
        resolved = web_sessions.resolve_session(session, secret)
    if resolved is None:
        return None
    request.state.auth_method = "session"
    request.state.web_session = resolved
    if request.method not in web_sessions.SAFE_METHODS and not web_sessions.csrf_matches(
        secret, csrf
    ):
        raise HTTPException(
            status_code=403,
            detail=f"missing or wrong CSRF token: cookie-authenticated requests that change "
            f"state must send the {web_sessions.CSRF_HEADER} header or the "
            f"{web_sessions.CSRF_FORM_FIELD} form field",
        )
    return resolved.principal


MaybePrincipal = Annotated[Principal | None, Depends(current_principal)]


def _deny(status: int, reason: str) -> HTTPException:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return HTTPException(status_code=status, detail=reason, headers=headers)


def require(requirement: Requirement) -> Callable[..., Principal]:
    def dependency(principal: MaybePrincipal) -> Principal:
        decision = authorize(principal, requirement)
        if not decision.allowed or principal is None:
            raise _deny(decision.status, decision.reason)
        return principal

    return dependency


def require_connector(connector_id: str, principal: MaybePrincipal) -> Principal:
    """A connector token acting on its own connector id (from the path)."""
    decision = authorize(principal, Requirement.CONNECTOR, owner_id=connector_id)
    if not decision.allowed or principal is None:
        raise _deny(decision.status, decision.reason)
    return principal


CurrentUser = Annotated[Principal, Depends(require(Requirement.USER))]
AdminUser = Annotated[Principal, Depends(require(Requirement.ADMIN))]
ConnectorAuth = Annotated[Principal, Depends(require_connector)]
ScimAuth = Annotated[Principal, Depends(require(Requirement.SCIM))]


def page_csrf_token(
    request: Request, _principal: Annotated[Principal | None, Depends(current_principal)]
) -> str | None:
    """The CSRF token web pages embed in their forms (None when not signed in by cookie)."""
    resolved = getattr(request.state, "web_session", None)
    return resolved.csrf_token if isinstance(resolved, web_sessions.ResolvedSession) else None


CsrfToken = Annotated[str | None, Depends(page_csrf_token)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def actor_of(principal: Principal, request: Request, source: str = "api") -> audit.Actor:
    if source == "api" and getattr(request.state, "auth_method", None) == "session":
        source = "web"
    return audit.Actor(
        type=principal.kind.value,
        id=principal.id,
        source=source,
        request_id=getattr(request.state, "request_id", None),
    )
