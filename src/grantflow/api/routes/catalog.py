"""The catalog: integration types, their resource types and permissions, and config schema."""

from __future__ import annotations

from fastapi import APIRouter

from grantflow.api.catalog_view import IntegrationTypePublic, integration_types
from grantflow.api.deps import CurrentUser

router = APIRouter(prefix="/api/v1", tags=["catalog"])


@router.get("/catalog", response_model=list[IntegrationTypePublic])
def catalog(_user: CurrentUser) -> list[IntegrationTypePublic]:
    return integration_types()
