"""What a model field accepts, read from its annotation and constraints: the kind of value, the
enum choices, the ge/le bounds, the list lengths. The operation flags (cli/op_flags.py) build
their argparse types and help text from it, so help cannot drift from the models."""

from __future__ import annotations

import enum
import types
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length")
# Units by field name, then by suffix: the models keep them in the names (`_kbps`, `_seconds`).
UNITS = {
    "time": "seconds",
    "start": "seconds",
    "duration": "seconds",
    "width": "pixels",
    "height": "pixels",
    "fps": "frames/s",
}
UNIT_SUFFIXES = {"_kbps": "kbit/s", "_seconds": "seconds"}


@dataclass(frozen=True)
class Shape:
    """The value a field takes: a scalar (`base` int/float/str/bool, or an enum's `choices`), a
    list of `item`s, or a `model`'s fields; `bounds` are its ge/gt/le/lt and lengths."""

    kind: Literal["scalar", "list", "model"]
    base: type = str
    choices: tuple[str, ...] = ()
    bounds: dict[str, Any] = field(default_factory=dict)
    item: Shape | None = None
    model: type[BaseModel] | None = None


def _constraints(metadata: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in metadata:
        if isinstance(item, FieldInfo):
            found |= _constraints(item.metadata)
        for bound in BOUNDS:
            if (value := getattr(item, bound, None)) is not None:
                found[bound] = value
    return found


def shape_of(annotation: Any, metadata: list[Any] | tuple[Any, ...] = ()) -> Shape:
    """The shape of `annotation`; `metadata` are the field's own constraints (FieldInfo's)."""
    bounds = _constraints(metadata)
    tp = annotation
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            bounds |= _constraints(tp.__metadata__)
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            arms = [arm for arm in get_args(tp) if arm is not type(None)]
            tp = arms[0] if len(arms) == 1 else str
        else:
            break
    if get_origin(tp) is tuple:
        return Shape("list", bounds=bounds, item=shape_of(get_args(tp)[0]))
    if get_origin(tp) is Literal:
        return Shape("scalar", choices=tuple(str(v) for v in get_args(tp)), bounds=bounds)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return Shape("scalar", choices=tuple(str(m.value) for m in tp), bounds=bounds)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return Shape("model", model=tp, bounds=bounds)
    base = tp if tp in (int, float, bool) else str
    return Shape("scalar", base=base, bounds=bounds)


def unit_of(name: str) -> str:
    """The unit of a field, from its name (`video_bitrate_kbps` → kbit/s); "" if none."""
    if name in UNITS:
        return UNITS[name]
    return next((unit for suffix, unit in UNIT_SUFFIXES.items() if name.endswith(suffix)), "")


def number(value: Any) -> str:
    """A bound or default as a person writes it: 604800, not 604800.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def range_text(bounds: dict[str, Any]) -> str:
    """`16..4320`, `at least 8`, `more than 0`… from ge/gt/le/lt; "" when unbounded."""
    low, high = bounds.get("ge"), bounds.get("le")
    if low is not None and high is not None:
        return f"{number(low)}..{number(high)}"
    parts = [
        f"{words} {number(bounds[key])}"
        for key, words in (("ge", "at least"), ("gt", "more than"), ("le", "at most"))
        if key in bounds
    ]
    if "lt" in bounds:
        parts.append(f"less than {number(bounds['lt'])}")
    return ", ".join(parts)


def allowed_text(shape: Shape, name: str) -> str:
    """What a value may be: `jpg|png|webp`, `16..4320 pixels`, or a list's items and count."""
    if shape.kind == "list" and shape.item is not None:
        each = allowed_text(shape.item, name)
        count = _count_text(shape.bounds)
        return "; ".join(part for part in (f"each {each}" if each else "", count) if part)
    if shape.kind == "model" and shape.model is not None:
        return ", ".join(
            f"{item_name(sub)} {allowed_text(shape_of(info.annotation, info.metadata), sub)}"
            + ("" if info.is_required() else " (optional)")
            for sub, info in shape.model.model_fields.items()
        )
    if shape.choices:
        return "|".join(shape.choices)
    text = range_text(shape.bounds)
    unit = unit_of(name)
    return f"{text} {unit}".strip() if text or unit else ""


def _count_text(bounds: dict[str, Any]) -> str:
    low, high = bounds.get("min_length"), bounds.get("max_length")
    if low is not None and high is not None:
        return f"{low} to {high} items" if low != high else f"{low} items"
    if high is not None:
        return f"at most {high} items"
    return f"at least {low} items" if low is not None else ""


def item_name(name: str) -> str:
    """A field's name in a list item's syntax: `video_bitrate_kbps` → `video_bitrate`."""
    return name.removesuffix("_kbps")


def default_text(info: FieldInfo) -> str:
    """The field's default as typed on the command line; `required` or `unset` if none."""
    if info.is_required() or info.default is PydanticUndefined:
        return "required"
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, tuple):
        return ",".join(as_typed(v) for v in value)
    return as_typed(value)


def as_typed(value: Any) -> str:
    """A value as the command line spells it: enums by value, lists comma-joined, a model
    (a list item) colon-joined, numbers without a needless `.0`."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, list | tuple):
        return ",".join(as_typed(v) for v in value)
    if isinstance(value, dict):
        return ":".join(as_typed(v) for v in value.values() if v is not None)
    return number(value)
