"""The catalog as the API answers it: integration types, their resource types and
permissions, and the configuration's fields and schema (from the resource registry and
``AwsOrganizationConfig``). Read by ``routes/catalog.py`` and the console's wizard."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from grantflow.aws import registry
from grantflow.domain.integration_config import AwsOrganizationConfig


class PermissionPublic(BaseModel):
    key: str
    label: str
    description: str
    discovered: bool = False


class ResourceTypePublic(BaseModel):
    key: str
    display_name: str
    permissions: list[PermissionPublic]
    permissions_note: str | None = None


class ConfigField(BaseModel):
    name: str
    label: str
    help: str
    step: str
    required: bool
    default: Any = None
    json_schema: dict[str, Any]


class IntegrationTypePublic(BaseModel):
    type: str
    display_name: str
    category: str
    provider: str
    resource_types: list[ResourceTypePublic]
    config_fields: list[ConfigField]
    config_schema: dict[str, Any]


def _resource_types() -> list[ResourceTypePublic]:
    out = []
    for rtype in registry.REGISTRY:
        perms = [PermissionPublic(key=p.key, label=p.label, description=p.description)
                 for p in rtype.permissions]  # fmt: skip
        note = None
        if rtype.permissions_from:
            note = f"Permissions are discovered: {rtype.permissions_from}"
        out.append(ResourceTypePublic(key=rtype.key, display_name=rtype.display_name,
                                      permissions=perms, permissions_note=note))  # fmt: skip
    return out


def _fields() -> list[ConfigField]:
    schema = AwsOrganizationConfig.model_json_schema()
    required = set(schema.get("required", []))
    fields = []
    for name, info in AwsOrganizationConfig.model_fields.items():
        prop = schema["properties"][name]
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        fields.append(
            ConfigField(
                name=name,
                label=info.title or name,
                help=info.description or "",
                step=str(extra.get("step", "config")),
                required=name in required,
                default=default,
                json_schema=prop,
            )
        )
    return fields


def integration_types() -> list[IntegrationTypePublic]:
    return [
        IntegrationTypePublic(
            type="aws-organization",
            display_name="Amazon Organization",
            category="Discovery",
            provider="AWS",
            resource_types=_resource_types(),
            config_fields=_fields(),
            config_schema=AwsOrganizationConfig.model_json_schema(),
        )
    ]
