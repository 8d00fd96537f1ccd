"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from grantflow import __version__
from grantflow.api.deps import Ctx
from grantflow.api.errors import error_body
from grantflow.api.metrics import require_metrics_token
from grantflow.store.db import DatabaseUnavailable, check_connection

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="The process can serve: its database answers")
def readyz(ctx: Ctx) -> Response:
    try:
        check_connection(ctx.engine)
    except DatabaseUnavailable:
        return JSONResponse(
            status_code=503, content=error_body("unavailable", "database unreachable")
        )
    return JSONResponse(
        status_code=200, content={"status": "ready", "database": ctx.engine.dialect.name}
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    include_in_schema=False,
    dependencies=[Depends(require_metrics_token)],  # when GRANTFLOW_METRICS_TOKEN is set
)
def metrics(ctx: Ctx) -> Response:
    return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)
