"""A test-side evaluator of the IAM condition operators the session cuts use, written from
IAM's documented semantics (moto has no policy simulator: iam:SimulatePrincipalPolicy and
iam:SimulateCustomPolicy answer "not implemented" in moto 5.2.5).

Documented rules implemented here (IAM User Guide, "Condition element" and "Condition
operators"): every operator of a Condition block must match (AND), every key of an operator
must match (AND), a key with several values matches when any of them does (OR); a key absent
from the request context makes the condition false; ``StringEquals`` compares exactly and case
sensitively; ``StringLike`` matches case sensitively with ``*`` (any run of characters, also
none) and ``?`` (exactly one), where the policy variables ``${*}``, ``${?}`` and ``${$}`` stand
for the literal characters; ``DateLessThan`` compares the request's date to the policy's.
An explicit Deny whose Action and Resource are ``*`` applies to every request it matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

_LITERAL = {"${*}": "*", "${?}": "?", "${$}": "$"}


def _like(pattern: str, value: str) -> bool:
    parts = re.split(r"(\$\{[*?$]\}|\*|\?)", pattern)
    regex = "".join(
        re.escape(_LITERAL[p]) if p in _LITERAL else ".*" if p == "*" else "." if p == "?"
        else re.escape(p)
        for p in parts
    )  # fmt: skip
    return re.fullmatch(regex, value, flags=re.DOTALL) is not None


def _date(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_OPERATORS = {
    "StringEquals": lambda wanted, got: wanted == got,
    "StringLike": _like,
    "DateLessThan": lambda wanted, got: _date(got) < _date(wanted),
}


def condition_matches(condition: Mapping[str, Mapping[str, object]],
                      context: Mapping[str, str]) -> bool:  # fmt: skip
    for operator, keys in condition.items():
        test = _OPERATORS[operator]
        for key, wanted in keys.items():
            values = wanted if isinstance(wanted, list) else [wanted]
            if key not in context:
                return False
            if not any(test(str(v), context[key]) for v in values):
                return False
    return True


def denied(statements: list[dict[str, object]], context: Mapping[str, str]) -> bool:
    """Whether any of the deny-all statements applies to a request with this context."""
    for statement in statements:
        assert statement["Effect"] == "Deny"
        assert statement["Action"] == "*" and statement["Resource"] == "*"
        condition = statement["Condition"]
        assert isinstance(condition, dict)
        if condition_matches(condition, context):
            return True
    return False
