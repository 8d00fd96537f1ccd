"""Authentication and authorization as FastAPI dependencies; handlers never check inline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from grantflow.api.context import AppContext
from grantflow.domain.authz import Principal, Requirement, authorize
from grantflow.services import audit, tokens
from grantflow.store.db import transaction

_bearer = HTTPBearer(auto_error=False, description="A Grantflow API, connector or SCIM token")


def get_ctx(request: Request) -> AppContext:
    ctx = request.app.state.ctx
    assert isinstance(ctx, AppContext)
    return ctx


Ctx = Annotated[AppContext, Depends(get_ctx)]


def current_principal(
    ctx: Ctx,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    if credentials is None or credentials.scheme.lower() != "bearer":
        return None
    with transaction(ctx.sessions) as session:
        return tokens.resolve_bearer(session, credentials.credentials)


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


def actor_of(principal: Principal, request: Request, source: str = "api") -> audit.Actor:
    return audit.Actor(
        type=principal.kind.value,
        id=principal.id,
        source=source,
        request_id=getattr(request.state, "request_id", None),
    )
