"""Server-rendered pages of the admin console and the user portal.

Pages carry the layout, labels and help text; the data comes from the JSON API, which the small
scripts under ``static/`` call with ``fetch`` (same origin, session cookie + ``X-CSRF-Token``).
A page needs a browser session: without one it redirects to ``/login?next=<page>``; admin pages
answer 403 to members. Nothing here decides what a user may do — the API does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from grantflow import __version__
from grantflow.api.catalog_view import integration_types
from grantflow.api.deps import CsrfToken, Ctx, MaybePrincipal
from grantflow.domain.authz import Role
from grantflow.domain.integration_config import (
    AWS_REGIONS,
    CUSTOM_DETAILS_MAX,
    NAME_RE,
    OU_ID_RE,
    ROLE_ARN_RE,
    TAG_KEY_RE,
    OwnerAttribute,
)
from grantflow.services.auth.oidc_login import safe_next
from grantflow.store.db import transaction
from grantflow.store.models import User

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"

# Content Security Policy of every page: our own scripts and styles only, no inline code.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def templates() -> Jinja2Templates:
    return Jinja2Templates(directory=WEB_DIR / "templates")


@dataclass(frozen=True, slots=True)
class Viewer:
    id: str
    username: str
    display_name: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str


PORTAL_NAV = (
    NavItem("/", "Request access"),
    NavItem("/requests", "My requests"),
    NavItem("/approvals", "My approvals"),
)
ADMIN_NAV = (
    NavItem("/admin/catalog", "Catalog"),
    NavItem("/admin/integrations", "Integrations"),
    NavItem("/admin/connectors", "Connectors"),
    NavItem("/admin/flows", "Access flows"),
    NavItem("/admin/requests", "All requests"),
    NavItem("/admin/resources", "Resources"),
    NavItem("/admin/users", "Users & groups"),
    NavItem("/admin/audit", "Audit log"),
    NavItem("/admin/notifications", "Notifications"),
)


def viewer_of(ctx: Ctx, principal: MaybePrincipal, csrf: CsrfToken) -> Viewer | None:
    """The signed-in person of a browser session (bearer tokens do not open pages)."""
    if principal is None or csrf is None or not principal.active:
        return None
    with transaction(ctx.sessions) as session:
        user = session.get(User, principal.id)
        if user is None or not user.active:
            return None
        return Viewer(user.id, user.username, user.display_name or user.username, user.role, csrf)


MaybeViewer = Annotated[Viewer | None, Depends(viewer_of)]


def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    path = request.url.path
    nav = [*PORTAL_NAV, *(ADMIN_NAV if viewer and viewer.is_admin else ())]
    current = max(
        (n.href for n in nav if path == n.href or (n.href != "/" and path.startswith(n.href))),
        key=len,
        default=None,
    )
    response = templates().TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "nav": nav if viewer else [],
            "current": current,
            "version": __version__,
            **context,
        },
        status_code=status_code,
    )
    return _security_headers(response)


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)


def page(template: str, *, admin: bool = False, **fixed: Any) -> Any:
    """A GET handler that renders ``template`` for a signed-in (admin) viewer."""

    def handler(request: Request, viewer: MaybeViewer) -> Response:
        if viewer is None:
            return _to_login(request)
        if admin and not viewer.is_admin:
            return render(request, "forbidden.html", viewer, status_code=403)
        return render(request, template, viewer, **fixed, **request.path_params)

    return handler


@router.get("/login")
def login_page(
    request: Request,
    viewer: MaybeViewer,
    next_path: Annotated[str | None, Query(alias="next", max_length=2048)] = None,
) -> Response:
    target = safe_next(next_path)
    if viewer is not None:
        return RedirectResponse(target, status_code=303)
    oidc = getattr(request.app.state, "oidc", None) is not None
    return render(request, "login.html", None, next_path=target, oidc_enabled=oidc)


@router.get("/admin")
def admin_home() -> Response:
    return RedirectResponse("/admin/integrations", status_code=303)


def _wizard_context(viewer: Viewer) -> dict[str, Any]:
    (kind,) = integration_types()
    return {
        "integration_type": kind,
        "config_fields": [f for f in kind.config_fields if f.step == "config"],
        "regions": sorted(AWS_REGIONS),
        "details_max": CUSTOM_DETAILS_MAX,
        "owner_attributes": [a.value for a in OwnerAttribute],
        # the rules the API applies, for the wizard to check each step on Next
        "patterns": {
            "name": NAME_RE.pattern,
            "role_arn": ROLE_ARN_RE.pattern,
            "ou": OU_ID_RE.pattern,
            "tag_key": TAG_KEY_RE.pattern,
        },
    }


def wizard(request: Request, viewer: MaybeViewer, integration_id: str | None = None) -> Response:
    if viewer is None:
        return _to_login(request)
    if not viewer.is_admin:
        return render(request, "forbidden.html", viewer, status_code=403)
    return render(
        request,
        "admin/wizard.html",
        viewer,
        integration_id=integration_id,
        **_wizard_context(viewer),
    )


router.add_api_route("/admin/catalog/aws-organization", wizard, methods=["GET"])
router.add_api_route("/admin/integrations/{integration_id}/edit", wizard, methods=["GET"])

PAGES: tuple[tuple[str, str, bool], ...] = (
    ("/", "portal/home.html", False),
    ("/requests", "portal/requests.html", False),
    ("/requests/{request_id}", "portal/request.html", False),
    ("/approvals", "portal/approvals.html", False),
    ("/profile", "portal/profile.html", False),
    ("/admin/catalog", "admin/catalog.html", True),
    ("/admin/integrations", "admin/integrations.html", True),
    ("/admin/connectors", "admin/connectors.html", True),
    ("/admin/flows", "admin/flows.html", True),
    ("/admin/requests", "admin/requests.html", True),
    ("/admin/resources", "admin/resources.html", True),
    ("/admin/users", "admin/users.html", True),
    ("/admin/audit", "admin/audit.html", True),
    ("/admin/notifications", "admin/notifications.html", True),
)
for _path, _template, _admin in PAGES:
    router.add_api_route(
        _path, page(_template, admin=_admin), methods=["GET"], response_class=HTMLResponse
    )
