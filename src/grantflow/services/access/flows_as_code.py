"""Access flows as code: export them with names instead of ids, and apply a document
idempotently (created / changed / deleted), validated with the API's own rules."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from grantflow.domain.flows import FlowDefinition
from grantflow.services.access import access_flows
from grantflow.services.audit import trail as audit
from grantflow.services.errors import Invalid
from grantflow.services.identity import owners, principals
from grantflow.store.models import AccessFlow, Group, Integration, User


class FlowDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    enabled: bool = True
    integration: str = Field(description="Integration name")
    definition: dict[str, Any] = Field(description="As the API's, with usernames and group names")


class FlowsDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flows: list[FlowDoc]


@dataclass
class Diff:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


_REFS = (("requestors", "user_ids", User), ("requestors", "group_ids", Group))


def _translate(
    session: Session, definition: dict[str, Any], to_names: bool, where: str, store: str | None
) -> dict[str, Any]:
    """Ids to names (export) or names to ids (apply). A group name means a group of the
    flow's integration's own identity store or a local or SCIM group, never another
    organization's group of the same name (``owners.owner_groups``)."""
    out = copy.deepcopy(definition)

    def convert(values: list[str], model: type[User] | type[Group], path: str) -> list[str]:
        key: Any = model.id
        other: Any = User.username if model is User else Group.name
        source, target = (key, other) if to_names else (other, key)
        query = select(source, target).where(source.in_(values))
        if model is User and not to_names:  # a name means the live user of that name
            query = query.where(User.deleted_at.is_(None))
        if model is Group and not to_names:
            query = query.where(owners.owner_groups(store)).order_by(Group.directory != store)
        result = session.execute(query)
        rows: dict[str, str] = {}
        for a, b in result:
            rows.setdefault(str(a), str(b))  # the integration's own group first
        missing = [v for v in values if v not in rows]
        if missing:
            kind = "user" if model is User else "group"
            raise Invalid(f"unknown {kind}(s) {', '.join(missing)}", field=path)
        return [str(rows[v]) for v in values]

    for section, name, model in _REFS:
        if name in out.get(section, {}):
            out[section][name] = convert(out[section][name], model, f"{where}.{section}.{name}")
    for i, group in enumerate(out.get("approval", {}).get("groups", [])):
        for name, model in (("user_ids", User), ("group_ids", Group)):
            if group.get(name):
                path = f"{where}.approval.groups.{i}.{name}"
                group[name] = convert(group[name], model, path)
    return out


def export(session: Session) -> FlowsDoc:
    flows = []
    for row in session.scalars(select(AccessFlow).order_by(AccessFlow.name)):
        integ = session.get(Integration, row.integration_id)
        assert integ is not None
        flows.append(
            FlowDoc(
                name=row.name,
                description=row.description,
                enabled=row.enabled,
                integration=integ.name,
                definition=_translate(session, row.definition, True, row.name, None),
            )
        )
    return FlowsDoc(flows=flows)


def apply(session: Session, doc: FlowsDoc, actor: audit.Actor, dry_run: bool) -> Diff:
    diff = Diff()
    existing = {f.name: f for f in session.scalars(select(AccessFlow))}
    seen: set[str] = set()
    for i, item in enumerate(doc.flows):
        where = f"flows.{i}"
        if item.name in seen:
            raise Invalid(f"flow {item.name!r} appears twice", field=f"{where}.name")
        seen.add(item.name)
        integ = session.scalar(select(Integration).where(Integration.name == item.integration))
        if integ is None:
            raise Invalid(
                f"no integration named {item.integration!r}", field=f"{where}.integration"
            )
        raw = _translate(
            session, item.definition, False, f"{where}.definition", principals.store_of(integ)
        )
        try:
            definition = FlowDefinition.model_validate(raw)
        except ValidationError as err:
            first = err.errors()[0]
            path = ".".join(str(p) for p in first.get("loc", ()))
            raise Invalid(str(first.get("msg")), field=f"{where}.definition.{path}") from err
        current = existing.get(item.name)
        wanted = {"description": item.description, "enabled": item.enabled,
                  "definition": definition.model_dump(mode="json")}  # fmt: skip
        if current is None:
            diff.created.append(item.name)
            if not dry_run:
                access_flows.create(
                    session, item.name, item.description, item.enabled, integ.id, definition, actor
                )
            continue
        now = {"description": current.description, "enabled": current.enabled,
               "definition": current.definition}  # fmt: skip
        if now == wanted and current.integration_id == integ.id:
            diff.unchanged.append(item.name)
            continue
        diff.changed.append(item.name)
        if not dry_run:
            changes = {"description": item.description, "enabled": item.enabled,
                       "definition": definition}  # fmt: skip
            access_flows.update(session, current, changes, actor)
            current.integration_id = integ.id
    for name, row in sorted(existing.items()):
        if name not in seen:
            diff.deleted.append(name)
            if not dry_run:
                access_flows.delete(session, row, actor)
    return diff
