"""The base of every spec model: camelCase aliases, frozen, docstrings as CRD descriptions, and
cross-field rules (rules.py) checked by pydantic and written into the schema as CEL."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from ffpool_operator.spec.rules import Rule, add_to_schema

K8sName = Annotated[
    str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]


def _rules_schema(schema: dict[str, Any], cls: type[Any]) -> None:
    add_to_schema(schema, getattr(cls, "RULES", ()))


class Camel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
        json_schema_extra=_rules_schema,
    )
    RULES: ClassVar[tuple[Rule, ...]] = ()
    """Cross-field rules: checked here and, as CEL, by the API server (rules.py)."""

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in self.RULES:
            rule.check(self)
        return self
