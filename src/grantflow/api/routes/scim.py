"""The SCIM 2.0 server (RFC 7644) at ``/scim/v2``, for an IdP to provision users and groups.

Authenticated by a SCIM token (``POST /api/v1/scim/tokens``). Every answer is
``application/scim+json``; every failure, authentication and unknown URLs included, is a SCIM
Error body with its ``scimType`` (routes use ``ScimRoute``, which converts exceptions).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from scim2_models import (
    Context,
    Error,
    InvalidSyntaxException,
    InvalidValueException,
    ListResponse,
    Meta,
    NotFoundException,
    NotImplementedException,
    ResourceType,
    ResponseParameters,
    Schema,
    SCIMException,
    ScimProvider,
    UniquenessException,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException

from grantflow.api.deps import Ctx, ScimAuth, actor_of
from grantflow.services.audit import trail as audit
from grantflow.services.directory import scim as service
from grantflow.services.directory.scim_resources import ScimGroup, ScimUser, provider
from grantflow.store.db import DatabaseUnavailable, read_transaction, transaction

log = structlog.get_logger(__name__)
MEDIA_TYPE = "application/scim+json"
PREFIX = "/scim/v2"
_KNOWN_PATH = re.compile(
    r"^(ServiceProviderConfig|ResourceTypes(/[^/]+)?|Schemas(/[^/]+)?|"
    r"(Users|Groups)(/[^/]+)?|(Users/|Groups/)?\.search)$"
)


class ScimResponse(Response):
    media_type = MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("utf-8")


def error_response(status: int, detail: str, scim_type: str | None = None) -> ScimResponse:
    body = Error(status=status, scim_type=scim_type, detail=detail)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ScimResponse(body.model_dump(), status_code=status, headers=headers)


def _to_error(request: Request, exc: Exception) -> ScimResponse:
    if isinstance(exc, SCIMException):
        error = exc.to_error()
        return error_response(error.status or 400, exc.detail, error.scim_type)
    if isinstance(exc, HTTPException):
        return error_response(exc.status_code, str(exc.detail))
    if isinstance(exc, IntegrityError):
        return _to_error(request, UniquenessException(detail="a unique value is already taken"))
    if isinstance(exc, OperationalError | DatabaseUnavailable):
        return error_response(503, "the database is unreachable; try again shortly")
    log.error("scim_unhandled_error", exc_info=exc, path=request.url.path)
    return error_response(500, "unexpected server error")


class ScimRoute(APIRoute):
    """Turns every exception of a SCIM route (its dependencies included) into a SCIM Error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def scim_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every failure answers as a SCIM Error
                return _to_error(request, exc)

        return scim_handler


router = APIRouter(prefix=PREFIX, tags=["scim"], route_class=ScimRoute)


async def scim_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError as err:
        raise InvalidSyntaxException(detail="the body is not valid JSON") from err


Body = Annotated[Any, Depends(scim_body)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _int_param(request: Request, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise InvalidValueException(detail=f"{name} must be an integer") from err


def _response_parameters(request: Request, model: type[Any]) -> ResponseParameters[Any]:
    try:
        return ResponseParameters[model].model_validate(  # type: ignore[valid-type]
            {
                "attributes": request.query_params.get("attributes") or None,
                "excludedAttributes": request.query_params.get("excludedAttributes") or None,
            }
        )
    except ValidationError as err:
        raise SCIMException.from_error(Error.from_validation_errors(err)[0]) from err


def _resource(request: Request, resource: Any, status: int = 200) -> Response:
    version = resource.meta.version if resource.meta else None
    if status == 200 and version and request.headers.get("if-none-match") == version:
        return Response(status_code=304, headers={"ETag": version})
    body = resource.model_dump(
        scim_ctx=Context.RESOURCE_QUERY_RESPONSE,
        response_parameters=_response_parameters(request, type(resource)),
    )
    headers = {"ETag": version} if version else {}
    if status == 201 and resource.meta and resource.meta.location:
        headers["Location"] = str(resource.meta.location)
    return ScimResponse(body, status_code=status, headers=headers)


def _list(request: Request, found: ListResponse[Any], model: type[Any]) -> Response:
    body = found.model_dump(
        scim_ctx=Context.SEARCH_RESPONSE,
        response_parameters=_response_parameters(request, model),
    )
    return ScimResponse(body)


def _query(request: Request) -> service.ListQuery:
    return service.ListQuery(
        filter=request.query_params.get("filter") or None,
        start_index=_int_param(request, "startIndex", 1) or 1,
        count=_int_param(request, "count", None),
    )


def _actor(principal: Any, request: Request) -> audit.Actor:
    return actor_of(principal, request, source="scim")


# --- discovery ----------------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
def service_provider_config(request: Request, _scim: ScimAuth) -> Response:
    config = _provider(request).config
    assert config is not None
    config.meta = Meta(resource_type="ServiceProviderConfig", location=str(request.url))
    return ScimResponse(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _provider(request: Request) -> ScimProvider:
    return provider(str(request.base_url) + "docs")


def _resource_types(request: Request) -> list[ResourceType]:
    types = [t.model_copy(deep=True) for t in _provider(request).resource_types]
    for item in types:
        item.meta = Meta(
            resource_type="ResourceType", location=f"{base_url(request)}/ResourceTypes/{item.id}"
        )
    return types


def _schemas(request: Request) -> list[Schema]:
    schemas = [s.model_copy(deep=True) for s in _provider(request).schemas]
    for item in schemas:
        item.meta = Meta(resource_type="Schema", location=f"{base_url(request)}/Schemas/{item.id}")
    return schemas


def _discovery_list(items: list[Any], model: type[Any]) -> Response:
    listed = ListResponse[model](  # type: ignore[valid-type]
        total_results=len(items), start_index=1, items_per_page=len(items), resources=items
    )
    return ScimResponse(listed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _one(items: list[Any], item_id: str, kind: str) -> Response:
    for item in items:
        if item.id == item_id:
            return ScimResponse(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
    raise NotFoundException(detail=f"no {kind} {item_id}")


@router.get("/ResourceTypes")
def resource_types(request: Request, _scim: ScimAuth) -> Response:
    return _discovery_list(_resource_types(request), ResourceType)


@router.get("/ResourceTypes/{type_id}")
def resource_type(type_id: str, request: Request, _scim: ScimAuth) -> Response:
    return _one(_resource_types(request), type_id, "resource type")


@router.get("/Schemas")
def schemas(request: Request, _scim: ScimAuth) -> Response:
    return _discovery_list(_schemas(request), Schema)


@router.get("/Schemas/{schema_id}")
def schema(schema_id: str, request: Request, _scim: ScimAuth) -> Response:
    return _one(_schemas(request), schema_id, "schema")


# --- users --------------------------------------------------------------------------------


@router.get("/Users")
def list_users(request: Request, ctx: Ctx, _scim: ScimAuth) -> Response:
    with read_transaction(ctx.sessions) as session:
        found = service.list_users(session, _query(request), base_url(request))
    return _list(request, found, ScimUser)


@router.post("/Users/.search")
def search_users(request: Request, ctx: Ctx, _scim: ScimAuth, body: Body) -> Response:
    query = _search_query(body)
    with read_transaction(ctx.sessions) as session:
        found = service.list_users(session, query, base_url(request))
    return _list(request, found, ScimUser)


@router.post("/Users")
def create_user(request: Request, ctx: Ctx, principal: ScimAuth, body: Body) -> Response:
    with transaction(ctx.sessions) as session:
        user = service.create_user(session, body, base_url(request), _actor(principal, request))
    return _resource(request, user, 201)


@router.get("/Users/{user_id}")
def get_user(user_id: str, request: Request, ctx: Ctx, _scim: ScimAuth) -> Response:
    with read_transaction(ctx.sessions) as session:
        user = service.get_user(session, user_id, base_url(request))
    return _resource(request, user)


@router.put("/Users/{user_id}")
def replace_user(
    user_id: str,
    request: Request,
    ctx: Ctx,
    principal: ScimAuth,
    body: Body,
    if_match: IfMatch = None,
) -> Response:
    with transaction(ctx.sessions) as session:
        user = service.replace_user(
            session, user_id, body, base_url(request), _actor(principal, request), if_match
        )
    return _resource(request, user)


@router.patch("/Users/{user_id}")
def patch_user(
    user_id: str,
    request: Request,
    ctx: Ctx,
    principal: ScimAuth,
    body: Body,
    if_match: IfMatch = None,
) -> Response:
    with transaction(ctx.sessions) as session:
        user = service.patch_user(
            session, user_id, body, base_url(request), _actor(principal, request), if_match
        )
    return _resource(request, user)


@router.delete("/Users/{user_id}", status_code=204)
def delete_user(
    user_id: str, request: Request, ctx: Ctx, principal: ScimAuth, if_match: IfMatch = None
) -> Response:
    with transaction(ctx.sessions) as session:
        service.delete_user(
            session, user_id, base_url(request), _actor(principal, request), if_match
        )
    return Response(status_code=204)


# --- groups -------------------------------------------------------------------------------


@router.get("/Groups")
def list_groups(request: Request, ctx: Ctx, _scim: ScimAuth) -> Response:
    with read_transaction(ctx.sessions) as session:
        found = service.list_groups(session, _query(request), base_url(request))
    return _list(request, found, ScimGroup)


@router.post("/Groups/.search")
def search_groups(request: Request, ctx: Ctx, _scim: ScimAuth, body: Body) -> Response:
    query = _search_query(body)
    with read_transaction(ctx.sessions) as session:
        found = service.list_groups(session, query, base_url(request))
    return _list(request, found, ScimGroup)


@router.post("/Groups")
def create_group(request: Request, ctx: Ctx, principal: ScimAuth, body: Body) -> Response:
    with transaction(ctx.sessions) as session:
        group = service.create_group(session, body, base_url(request), _actor(principal, request))
    return _resource(request, group, 201)


@router.get("/Groups/{group_id}")
def get_group(group_id: str, request: Request, ctx: Ctx, _scim: ScimAuth) -> Response:
    with read_transaction(ctx.sessions) as session:
        group = service.get_group(session, group_id, base_url(request))
    return _resource(request, group)


@router.put("/Groups/{group_id}")
def replace_group(
    group_id: str,
    request: Request,
    ctx: Ctx,
    principal: ScimAuth,
    body: Body,
    if_match: IfMatch = None,
) -> Response:
    with transaction(ctx.sessions) as session:
        group = service.replace_group(
            session, group_id, body, base_url(request), _actor(principal, request), if_match
        )
    return _resource(request, group)


@router.patch("/Groups/{group_id}")
def patch_group(
    group_id: str,
    request: Request,
    ctx: Ctx,
    principal: ScimAuth,
    body: Body,
    if_match: IfMatch = None,
) -> Response:
    with transaction(ctx.sessions) as session:
        group = service.patch_group(
            session, group_id, body, base_url(request), _actor(principal, request), if_match
        )
    return _resource(request, group)


@router.delete("/Groups/{group_id}", status_code=204)
def delete_group(
    group_id: str, request: Request, ctx: Ctx, principal: ScimAuth, if_match: IfMatch = None
) -> Response:
    with transaction(ctx.sessions) as session:
        service.delete_group(
            session, group_id, base_url(request), _actor(principal, request), if_match
        )
    return Response(status_code=204)


# --- search, unknown URLs and methods -----------------------------------------------------


def _search_query(body: Any) -> service.ListQuery:
    if not isinstance(body, dict):
        raise InvalidSyntaxException(detail="a SearchRequest object is expected")
    try:
        start = int(body.get("startIndex") or 1)
        count = body.get("count")
        return service.ListQuery(body.get("filter"), start, None if count is None else int(count))
    except (TypeError, ValueError) as err:
        raise InvalidValueException(detail="startIndex and count must be integers") from err


@router.post("/.search")
def search_all(_scim: ScimAuth) -> Response:
    raise NotImplementedException(detail="search Users or Groups: /Users/.search, /Groups/.search")


# Not an operation: SCIM-shaped 404/405 for unknown paths. Out of the OpenAPI document, where
# its five methods would share one operationId (which must be unique).
@router.api_route(
    "/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
def not_found(rest: str, request: Request, _scim: ScimAuth) -> Response:
    if _KNOWN_PATH.match(rest):
        return error_response(405, f"{request.method} is not allowed on /{rest}")
    return error_response(404, f"no SCIM endpoint /{rest}")
