"""The page an invitation link opens: ``GET /invite#<secret>``.

The secret is in the fragment, which browsers never send, so the server (and any proxy's
access log, and any Referer header) never sees it in a URL; the page's script posts it with
the new password to ``POST /auth/invitation``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from grantflow.services.directory.people import MIN_PASSWORD_LENGTH
from grantflow.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/invite")
def invite_page(request: Request) -> Response:
    return render(request, "invite.html", None, min_length=MIN_PASSWORD_LENGTH)
