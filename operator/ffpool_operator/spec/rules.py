"""Cross-field rules declared once and enforced twice: by the API server, as CEL in the CRD's
`x-kubernetes-validations` (so `kubectl apply` of an invalid pool is refused with the rule's
message), and by pydantic when the operator parses a spec (objects stored before the rule existed,
or a cluster whose CRD is older than the operator).

A model lists its rules in `RULES` (`Camel` in camel.py checks them and adds them to its JSON
schema); a single field carries one as an `Annotated` marker. The CEL side follows
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules:
`self` is the object (or field) the rule sits on, and each rule's estimated cost must stay within
the API server's budget, so a rule that loops over a map or list needs `maxProperties`/`maxItems`
there and `maxLength` on the strings it reads.

Only `rule` and `message`: a rule's `fieldPath` and `reason` need Kubernetes 1.28, and the chart
supports 1.25 (`kubeVersion` in charts/ffpool-operator/Chart.yaml; the CRD is checked against
1.25's schema in tests/unit/test_manifests_validate.py). The API server reports a violation at
the object the rule sits on (`spec.autoscaling: Invalid value: minReplicas must not exceed
maxReplicas`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

VALIDATIONS = "x-kubernetes-validations"


@dataclass(frozen=True)
class Rule:
    cel: str
    """The CEL expression the API server evaluates; true means valid."""
    message: str
    """Shown by the API server and raised by pydantic alike."""
    holds: Callable[[Any], bool]
    """The same rule in Python, on the parsed model (or field value)."""

    def validation(self) -> dict[str, str]:
        """The `x-kubernetes-validations` entry."""
        return {"rule": self.cel, "message": self.message}

    def check(self, value: Any) -> Any:
        if not self.holds(value):
            raise ValueError(self.message)
        return value

    # As an `Annotated` marker on a field: validate after the field's own type, and add the rule
    # to the field's JSON schema.
    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        out.setdefault(VALIDATIONS, []).append(self.validation())
        return out


def add_to_schema(schema: dict[str, Any], rules: tuple[Rule, ...]) -> None:
    if rules:
        schema[VALIDATIONS] = [rule.validation() for rule in rules]
