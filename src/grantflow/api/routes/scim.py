"""The SCIM 2.0 server (RFC 7644) at ``/scim/v2``, for an IdP to provision users and groups.

Authenticated by a SCIM token (``POST /api/v1/scim/tokens``). Every answer is
``application/scim+json``; every failure, authentication and unknown URLs included, is a SCIM
Error body with its ``scimType`` (routes use ``ScimRoute``, which converts exceptions).
"""

import json
import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Path, Request, Response
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
from grantflow.services.directory import scim_actions
from grantflow.services.directory.scim_resources import provider
from grantflow.store.db import DatabaseUnavailable

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


def _list(request: Request, found: "ListResponse[Any]", model: type[Any]) -> Response:
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


def add_discovery_routes(
    path: str,
    model: type[ResourceType] | type[Schema],
    items_of: Callable[[ScimProvider], list[Any]],
    id_name: str,
    noun: str,
    names: tuple[str, str],
) -> None:
    """``/<path>`` lists what the service says of itself of one kind (``ResourceTypes``,
    ``Schemas``) and ``/<path>/{<id_name>}`` shows one; ``names`` are the two routes' names."""
    ItemId = Annotated[str, Path(alias=id_name)]

    def described(request: Request) -> list[Any]:
        items = [item.model_copy(deep=True) for item in items_of(_provider(request))]
        for item in items:
            location = f"{base_url(request)}/{path}/{item.id}"
            item.meta = Meta(resource_type=model.__name__, location=location)
        return items

    def list_items(request: Request, _scim: ScimAuth) -> Response:
        items = described(request)
        listed = ListResponse[model](  # type: ignore[valid-type]
            total_results=len(items), start_index=1, items_per_page=len(items), resources=items
        )
        return ScimResponse(listed.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))

    def one_item(item_id: ItemId, request: Request, _scim: ScimAuth) -> Response:
        for item in described(request):
            if item.id == item_id:
                return ScimResponse(item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))
        raise NotFoundException(detail=f"no {noun} {item_id}")

    router.add_api_route(f"/{path}", list_items, methods=["GET"], name=names[0])
    router.add_api_route(f"/{path}/{{{id_name}}}", one_item, methods=["GET"], name=names[1])


add_discovery_routes(
    "ResourceTypes",
    ResourceType,
    lambda provider: list(provider.resource_types),
    "type_id",
    "resource type",
    ("resource_types", "resource_type"),
)
add_discovery_routes(
    "Schemas", Schema, lambda provider: list(provider.schemas), "schema_id", "schema",
    ("schemas", "schema"),
)  # fmt: skip


# --- users and groups --------------------------------------------------------------------


def add_resource_routes(kind: service.Kind[Any, Any]) -> None:
    """The seven routes of one resource type (``/Users``, ``/Groups``): the same for both.
    The id's path parameter keeps its name (``user_id``, ``group_id``) in the document."""
    path = f"/{kind.endpoint}"
    item = f"{path}/{{{kind.noun}_id}}"
    ResourceId = Annotated[str, Path(alias=f"{kind.noun}_id")]

    def list_resources(request: Request, ctx: Ctx, _scim: ScimAuth) -> Response:
        found = scim_actions.search(ctx.sessions, kind, _query(request), base_url(request))
        return _list(request, found, kind.model)

    def search_resources(request: Request, ctx: Ctx, _scim: ScimAuth, body: Body) -> Response:
        query = _search_query(body)
        found = scim_actions.search(ctx.sessions, kind, query, base_url(request))
        return _list(request, found, kind.model)

    def create_resource(request: Request, ctx: Ctx, principal: ScimAuth, body: Body) -> Response:
        actor = _actor(principal, request)
        resource = scim_actions.create(ctx.sessions, kind, body, base_url(request), actor)
        return _resource(request, resource, 201)

    def get_resource(
        resource_id: ResourceId, request: Request, ctx: Ctx, _scim: ScimAuth
    ) -> Response:
        resource = scim_actions.get(ctx.sessions, kind, resource_id, base_url(request))
        return _resource(request, resource)

    def change_route(patch: bool) -> Callable[..., Response]:
        def change_resource(
            resource_id: ResourceId,
            request: Request,
            ctx: Ctx,
            principal: ScimAuth,
            body: Body,
            if_match: IfMatch = None,
        ) -> Response:
            actor = _actor(principal, request)
            base = base_url(request)
            resource = scim_actions.change(
                ctx.sessions, kind, resource_id, body, base, actor, if_match, patch=patch
            )
            return _resource(request, resource)

        return change_resource

    def delete_resource(
        resource_id: ResourceId,
        request: Request,
        ctx: Ctx,
        principal: ScimAuth,
        if_match: IfMatch = None,
    ) -> Response:
        actor = _actor(principal, request)
        scim_actions.delete(ctx.sessions, kind, resource_id, base_url(request), actor, if_match)
        return Response(status_code=204)

    noun, plural = kind.noun, kind.endpoint.lower()
    # The names (and so the operationIds) are those of the routes written out one by one.
    router.add_api_route(path, list_resources, methods=["GET"], name=f"list_{plural}")
    router.add_api_route(
        f"{path}/.search", search_resources, methods=["POST"], name=f"search_{plural}"
    )
    router.add_api_route(path, create_resource, methods=["POST"], name=f"create_{noun}")
    router.add_api_route(item, get_resource, methods=["GET"], name=f"get_{noun}")
    router.add_api_route(item, change_route(False), methods=["PUT"], name=f"replace_{noun}")
    router.add_api_route(item, change_route(True), methods=["PATCH"], name=f"patch_{noun}")
    router.add_api_route(
        item, delete_resource, methods=["DELETE"], name=f"delete_{noun}", status_code=204
    )


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


add_resource_routes(service.USERS)
add_resource_routes(service.GROUPS)


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
