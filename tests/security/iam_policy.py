"""A small IAM policy evaluator, to check the template where moto cannot (moto enforces no IAM).

It implements the documented semantics the template relies on, and refuses (raises) anything
else, so a template that starts using another construct fails loudly instead of passing:

* identity-based policies only, one role, no permissions boundary, SCP or session policy;
* an explicit ``Deny`` that matches any resource of the request wins; otherwise the request is
  allowed only when **every** resource the action authorizes is matched by some ``Allow``
  statement whose conditions hold for that resource (IAM Identity Center's
  CreateAccountAssignment authorizes the instance, the permission set and the account; each
  is checked on its own, as the Service Authorization Reference lists them);
* ``aws:ResourceTag/<key>`` is read from the resource being checked, ``aws:RequestTag/<key>``
  and ``aws:TagKeys`` from the request;
* condition operators ``StringEquals``, ``StringLike``, ``StringNotEquals``, ``ArnLike`` and
  their ``ForAllValues:``/``ForAnyValue:`` forms (a missing key fails a single-valued positive
  operator, satisfies ``ForAllValues`` and fails ``ForAnyValue``); operators in one block and
  blocks in one condition are ANDed, the values of one key ORed;
* ``*`` and ``?`` wildcards in actions (case-insensitive) and resources (case-sensitive).

The CloudFormation side resolves the intrinsic functions the template uses (Ref, Fn::Sub,
Fn::Join, Fn::Split, Fn::If, Fn::Equals, Fn::Not, Fn::GetAtt) for given parameter values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Json = Any


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not model."""


class Decision(StrEnum):
    ALLOWED = "allowed"
    IMPLICIT_DENY = "implicit deny"
    EXPLICIT_DENY = "explicit deny"


@dataclass(frozen=True)
class Resource:
    arn: str
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    action: str
    resources: tuple[Resource, ...]
    # request-level condition keys, e.g. aws:RequestTag/grantflow:managed, aws:TagKeys
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)


# --- CloudFormation ------------------------------------------------------------------------

_NO_VALUE = object()


@dataclass(frozen=True)
class Stack:
    """What a deployed stack's policies resolve against."""

    parameters: Mapping[str, str]
    account_id: str
    partition: str = "aws"
    region: str = "us-east-1"


def _pseudo(name: str, stack: Stack) -> str | None:
    return {
        "AWS::Partition": stack.partition,
        "AWS::AccountId": stack.account_id,
        "AWS::Region": stack.region,
    }.get(name)


def _ref(name: str, template: Json, stack: Stack) -> Any:
    if name == "AWS::NoValue":
        return _NO_VALUE
    pseudo = _pseudo(name, stack)
    if pseudo is not None:
        return pseudo
    spec = template["Parameters"].get(name)
    if spec is None:
        if name in template["Resources"]:
            return f"<{name}>"
        raise UnsupportedPolicy(f"Ref to unknown {name}")
    value = stack.parameters.get(name, spec.get("Default"))
    if value is None:
        raise UnsupportedPolicy(f"parameter {name} has no value")
    return value.split(",") if spec["Type"] == "CommaDelimitedList" else value


def _sub(text: str, variables: Mapping[str, Any], template: Json, stack: Stack) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = variables[name] if name in variables else _ref(name, template, stack)
        if not isinstance(value, str):
            raise UnsupportedPolicy(f"Fn::Sub variable {name} is not a string")
        return value

    return re.sub(r"\$\{([^}!]+)\}", replace, text)


def resolve(node: Json, template: Json, stack: Stack, conditions: Mapping[str, bool]) -> Any:
    """``node`` with every intrinsic function evaluated (AWS::NoValue entries dropped)."""

    def r(value: Json) -> Any:
        return resolve(value, template, stack, conditions)

    if isinstance(node, list):
        return [item for item in (r(x) for x in node) if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            return _ref(arg, template, stack)
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return _sub(arg, {}, template, stack)
            text, variables = arg
            return _sub(text, {k: r(v) for k, v in variables.items()}, template, stack)
        if key == "Fn::Join":
            delimiter, values = arg
            if not isinstance(delimiter, str):
                raise UnsupportedPolicy("Fn::Join delimiter must be a string")
            resolved = r(values)
            return delimiter.join(str(v) for v in resolved)
        if key == "Fn::Split":
            delimiter, text = arg
            return str(r(text)).split(delimiter)
        if key == "Fn::If":
            condition, yes, no = arg
            return r(yes) if conditions[condition] else r(no)
        if key == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
        if key.startswith("Fn::") or key == "Condition":
            raise UnsupportedPolicy(f"intrinsic {key} is not modelled")
    return {k: r(v) for k, v in node.items()}


def _condition_value(node: Json, template: Json, stack: Stack, conditions: dict[str, Any]) -> bool:
    ((key, arg),) = node.items()
    if key == "Fn::Equals":
        a, b = (resolve(x, template, stack, conditions) for x in arg)
        return bool(a == b)
    if key == "Fn::Not":
        return not _condition_value(arg[0], template, stack, conditions)
    if key == "Condition":
        return bool(conditions[arg])
    raise UnsupportedPolicy(f"condition function {key} is not modelled")


def template_conditions(template: Json, stack: Stack) -> dict[str, bool]:
    conditions: dict[str, Any] = {}
    for name, node in template.get("Conditions", {}).items():
        conditions[name] = _condition_value(node, template, stack, conditions)
    return conditions


def role_policies(template: Json, stack: Stack, role: str = "ManagementRole") -> list[Json]:
    """The policy documents the stack attaches to ``role`` (managed policies and inline)."""
    conditions = template_conditions(template, stack)
    documents: list[Json] = []
    for name, resource in template["Resources"].items():
        if "Condition" in resource and not conditions[resource["Condition"]]:
            continue
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and f"<{role}>" in resolve(
            props["Roles"], template, stack, conditions
        ):
            documents.append(resolve(props["PolicyDocument"], template, stack, conditions))
        if name == role:
            for inline in props.get("Policies", []):
                documents.append(resolve(inline["PolicyDocument"], template, stack, conditions))
    return documents


# --- evaluation ----------------------------------------------------------------------------


def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def _listed(value: Json) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _string_match(op: str, actual: str, expected: str) -> bool:
    if op == "StringEquals":
        return actual == expected
    if op in ("StringLike", "ArnLike"):
        return _glob(expected, ignore_case=False).match(actual) is not None
    raise UnsupportedPolicy(f"condition operator {op} is not modelled")


def _condition_holds(
    op: str, key: str, expected: Sequence[str], values: tuple[str, ...] | None
) -> bool:
    quantifier, _, base = op.rpartition(":")
    if base not in ("StringEquals", "StringNotEquals", "StringLike", "ArnLike"):
        raise UnsupportedPolicy(f"condition operator {op} is not modelled")
    negated = base == "StringNotEquals"
    base = "StringEquals" if negated else base

    def one(actual: str) -> bool:
        hit = any(_string_match(base, actual, e) for e in expected)
        return not hit if negated else hit

    if quantifier == "ForAllValues":
        return values is None or all(one(v) for v in values)
    if quantifier == "ForAnyValue":
        return values is not None and any(one(v) for v in values)
    if quantifier:
        raise UnsupportedPolicy(f"condition quantifier {quantifier} is not modelled")
    if values is None:
        return negated  # a missing key fails positive operators, satisfies negated ones
    if len(values) != 1:
        raise UnsupportedPolicy(f"{key} is multi-valued; use ForAllValues/ForAnyValue")
    return one(values[0])


def _context(request: Request, resource: Resource) -> dict[str, tuple[str, ...]]:
    context: dict[str, tuple[str, ...]] = {}
    for key, value in request.context.items():
        context[key.lower()] = (value,) if isinstance(value, str) else tuple(value)
    for tag, value in resource.tags.items():
        context[f"aws:resourcetag/{tag}".lower()] = (value,)
    return context


def _statement_applies(statement: Json, request: Request, resource: Resource) -> bool:
    for unsupported in ("NotAction", "NotResource", "NotPrincipal", "Principal"):
        if unsupported in statement:
            raise UnsupportedPolicy(f"{unsupported} is not modelled")
    if not any(
        _glob(a, ignore_case=True).match(request.action) for a in _listed(statement["Action"])
    ):
        return False
    if not any(
        _glob(r, ignore_case=False).match(resource.arn) for r in _listed(statement["Resource"])
    ):
        return False
    context = _context(request, resource)
    for op, block in statement.get("Condition", {}).items():
        for key, expected in block.items():
            if not _condition_holds(op, key, _listed(expected), context.get(key.lower())):
                return False
    return True


def evaluate(policies: Sequence[Json], request: Request) -> Decision:
    """The decision of the identity-based ``policies`` on ``request``."""
    if not request.resources:
        raise ValueError("a request authorizes at least one resource ('*' for none)")
    statements = [s for document in policies for s in document["Statement"]]
    for statement in statements:
        if statement["Effect"] not in ("Allow", "Deny"):
            raise UnsupportedPolicy(f"Effect {statement['Effect']!r}")
    for statement in statements:
        if statement["Effect"] == "Deny" and any(
            _statement_applies(statement, request, r) for r in request.resources
        ):
            return Decision.EXPLICIT_DENY
    allows = [s for s in statements if s["Effect"] == "Allow"]
    if all(any(_statement_applies(s, request, r) for s in allows) for r in request.resources):
        return Decision.ALLOWED
    return Decision.IMPLICIT_DENY
