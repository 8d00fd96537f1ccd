"""The page where a signed-in user approves a CLI sign-in (`grantflow login --browser`).

``GET /cli-login?h=…&p=…&n=…&t=…`` shows the machine's label and the confirmation code the
terminal shows (signing in first when needed); ``POST /cli-login`` (session cookie and CSRF
field) stores the hash as the user's personal token. See `grantflow.domain.cli_login`.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from grantflow.api.deps import Ctx, CurrentUser, actor_of
from grantflow.domain.cli_login import LinkError, confirmation_code, parse_link
from grantflow.services import cli_login
from grantflow.services.errors import NotFound, ServiceError
from grantflow.store.db import transaction
from grantflow.store.models import User
from grantflow.web.pages import MaybeViewer, render

router = APIRouter(include_in_schema=False)
TEMPLATE = "portal/cli_login.html"
Param = Annotated[str, Query(max_length=256)]
Field = Annotated[str, Form(max_length=256)]


@router.get("/cli-login")
def cli_login_page(
    request: Request, viewer: MaybeViewer, h: Param = "", p: Param = "", n: Param = "",
    t: Param = "",
) -> Response:  # fmt: skip
    if viewer is None:
        target = f"{request.url.path}?{request.url.query}"
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    try:
        link = parse_link(h, p, n, t, time.time())
    except LinkError as err:
        return render(request, TEMPLATE, viewer, status_code=400, problem=str(err))
    return render(request, TEMPLATE, viewer, link=link, code=confirmation_code(link.token_hash))


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


@router.post("/cli-login")
def cli_login_approve(
    request: Request, ctx: Ctx, principal: CurrentUser, viewer: MaybeViewer, h: Field, p: Field,
    n: Field, t: Field,
) -> Response:  # fmt: skip
    """CurrentUser enforces the session's CSRF field on this cookie-authenticated form."""
    try:
        link = parse_link(h, p, n, t, time.time())
        with transaction(ctx.sessions) as session:
            cli_login.approve(session, _user(session, principal.id), link,
                              actor_of(principal, request))  # fmt: skip
    except LinkError as err:
        return render(request, TEMPLATE, viewer, status_code=400, problem=str(err))
    except ServiceError as err:
        return render(request, TEMPLATE, viewer, status_code=err.status, problem=err.message)
    return render(request, TEMPLATE, viewer, approved=link)
