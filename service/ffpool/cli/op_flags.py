"""The operation flags of `ffpool submit`, generated from the operation models
(domain/operations.py) as `ffpool schema` generates the JSON Schema: every field of every
operation is a flag, and its help lists the operations that take it, the allowed values, the
unit and the default. Only the flags given are sent; the model supplies the defaults."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from ffpool.cli.model_shapes import (
    Shape,
    allowed_text,
    default_text,
    item_name,
    shape_of,
    unit_of,
)
from ffpool.domain.jobs import Operation

OPERATION_MODELS: dict[str, type[BaseModel]] = {
    str(model.model_fields["op"].default): model for model in get_args(get_args(Operation)[0])
}
OPERATIONS = tuple(OPERATION_MODELS)
# A nested model's fields are flags with this prefix: `chunking.mode` is --chunk-mode.
NESTED_PREFIX = {"chunking": "chunk"}
# What each field means (the models say it in attribute docstrings, which pydantic does not
# expose) unless its Field has a `description`; which operations take it, the allowed values,
# the unit and the default are read from the models. tests/unit/test_cli_op_flags.py fails for
# a field described nowhere.
DESCRIPTIONS: dict[str, str] = {
    "time": "where in the input to take the frame",
    "width": "output width (unset: follows the height and the input's aspect ratio)",
    "height": "output height (unset: the input's; the width follows the aspect ratio)",
    "format": "output format",
    "container": "output container",
    "video_codec": "video codec (copy: keep the input's stream; none: no video)",
    "audio_codec": "audio codec (copy: keep the input's stream; none: no audio)",
    "crf": "constant rate factor, lower is better (h264/h265: at most 51); not with "
    "--video-bitrate (unset: the codec's default quality)",
    "video_bitrate_kbps": "video bitrate instead of --crf",
    "audio_bitrate_kbps": "audio bitrate",
    "bitrate_kbps": "audio bitrate",
    "fps": "output frame rate (unset: the input's)",
    "preset": "encoder preset: faster encodes or smaller files",
    "start": "where the cut starts",
    "duration": "how long the cut lasts",
    "mode": "copy: cut at keyframes without re-encoding (fast); reencode: frame-exact",
    "renditions": "the ladder's H.264 renditions, comma-separated "
    "(unset: the default ladder, cut to the input's height; docs/ladders.md)",
    "audio_bitrates_kbps": "one AAC rendition per bitrate, comma-separated ('' for no audio)",
    "segment_seconds": "segment length",
    "formats": "packages to make, comma-separated",
    "hls_segment_type": "HLS segment type (DASH needs fmp4)",
    "chunking.mode": "always: split whenever the input is longer than one chunk; auto: only "
    "when it is long and other workers consume the queue (docs/chunks.md)",
    "chunking.chunk_seconds": "split the video encode into chunks of about this length, each "
    "run by any worker (docs/chunks.md)",
}
METAVARS = {"kbit/s": "KBPS", "seconds": "SECONDS", "pixels": "PIXELS", "frames/s": "FPS"}


@dataclass(frozen=True)
class FieldUse:
    """One operation's field behind a flag."""

    op: str
    name: str
    info: FieldInfo
    shape: Shape


@dataclass
class Flag:
    """One command-line flag: the field at `path` in each operation of `uses`."""

    dest: str
    path: tuple[str, ...]
    uses: list[FieldUse] = field(default_factory=list)

    @property
    def option(self) -> str:
        return "--" + self.dest.replace("_", "-")

    def use_for(self, op: str) -> FieldUse | None:
        return next((use for use in self.uses if use.op == op), None)


class UsageError(ValueError):
    """Operation flags that cannot make an operation: the user's to fix (exit code USAGE)."""


class FlagError(UsageError):
    """Flags given for an operation that does not take them."""

    def __init__(self, op: str, foreign: list[str]) -> None:
        own = operation_options(op)
        takes = f"its flags: {', '.join(own)}" if own else f"{op} takes no operation flags"
        super().__init__(f"{op} does not take {', '.join(foreign)}; {takes}")


def flag_name(path: tuple[str, ...]) -> str:
    """A field's flag (its argparse dest): the `_kbps` unit dropped (`--video-bitrate`, the
    flag users already type), a nested model's fields prefixed (`--chunk-seconds`)."""
    name = path[-1]
    if len(path) > 1:
        prefix = NESTED_PREFIX.get(path[0], path[0])
        name = f"{prefix}_{name.removeprefix(prefix + '_')}"
    return name.removesuffix("_kbps")


def model_fields(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """Every field path of an operation model but `op`, a nested model's fields in its place."""
    for name, info in model.model_fields.items():
        if name == "op" and not prefix:
            continue
        shape = shape_of(info.annotation, info.metadata)
        if shape.kind == "model" and shape.model is not None:
            yield from model_fields(shape.model, (*prefix, name))
        else:
            yield (*prefix, name), info


def _build_flags() -> dict[str, Flag]:
    flags: dict[str, Flag] = {}
    for op, model in OPERATION_MODELS.items():
        for path, info in model_fields(model):
            flag = flags.setdefault(flag_name(path), Flag(flag_name(path), path))
            if flag.path != path:
                raise TypeError(f"{'.'.join(path)} and {'.'.join(flag.path)} share a flag")
            shape = shape_of(info.annotation, info.metadata)
            flag.uses.append(FieldUse(op, path[-1], info, shape))
    return flags


FLAGS = _build_flags()


def operation_options(op: str) -> list[str]:
    """The flags `op` takes."""
    return [flag.option for flag in FLAGS.values() if flag.use_for(op) is not None]


def option_for(path: tuple[str | int, ...]) -> str | None:
    """How the command line names a field's location: `--crf`, `--chunk-seconds`, or an item
    of a list flag, `renditions[1].height` (items count from 0); None if no flag names it."""
    for end in range(len(path), 0, -1):
        head = path[:end]
        if not all(isinstance(part, str) for part in head):
            continue
        flag = FLAGS.get(flag_name(tuple(str(part) for part in head)))
        if flag is None or flag.path != head:
            continue
        rest = "".join(f"[{p}]" if isinstance(p, int) else f".{item_name(p)}" for p in path[end:])
        return f"{flag.option}{rest}" if not rest else f"{flag.option[2:]}{rest}"
    return None


def help_text(flag: Flag) -> str:
    """What the flag means, then per group of operations: allowed values, unit, default."""
    groups: dict[tuple[str, str], list[str]] = {}
    for use in flag.uses:
        allowed = allowed_text(use.shape, use.name)
        groups.setdefault((allowed, default_text(use.info)), []).append(use.op)
    parts = [
        f"[{', '.join(ops)}: {allowed + '; ' if allowed else ''}"
        f"{default if default == 'required' else 'default ' + default}]"
        for (allowed, default), ops in groups.items()
    ]
    text = " ".join([meaning(flag), *parts]).strip()
    return text.replace("%", "%%")  # argparse formats help with %


def meaning(flag: Flag) -> str:
    """What the field means: its model's `description`, else this module's words for it."""
    described = next((use.info.description for use in flag.uses if use.info.description), None)
    return described or DESCRIPTIONS.get(".".join(flag.path), "")


def _metavar(flag: Flag, shape: Shape) -> str:
    if shape.kind == "list" and shape.item is not None:
        return _metavar(flag, shape.item) + "[,...]"
    if shape.kind == "model" and shape.model is not None:
        # Positional, colon-separated, in the model's field order: HEIGHT:VIDEO_BITRATE[:PROFILE].
        return "".join(
            f":{item_name(name).upper()}" if info.is_required() else f"[:{item_name(name).upper()}]"
            for name, info in shape.model.model_fields.items()
        ).removeprefix(":")
    if shape.choices:
        return "{" + ",".join(shape.choices) + "}"
    return METAVARS.get(unit_of(flag.path[-1]), "N" if shape.base in (int, float) else "TEXT")


def _argparse_kind(flag: Flag) -> dict[str, Any]:
    """type/choices/metavar: the union of the operations' choices (each operation's own are
    in the help, and its model refuses the others' with a message naming them)."""
    shapes = [use.shape for use in flag.uses]
    first = shapes[0]
    if first.kind != "scalar":
        return {"metavar": _metavar(flag, first)}
    choices = list(dict.fromkeys(c for shape in shapes for c in shape.choices))
    if choices:  # listed in the help, per operation; the usage line stays short
        return {"choices": choices, "metavar": flag.dest.upper()}
    if first.base is bool:  # --x / --no-x; unset (None) when neither is given
        return {"action": argparse.BooleanOptionalAction}
    return {"type": first.base, "metavar": _metavar(flag, first)}


def add_operation_flags(p: argparse.ArgumentParser) -> None:
    """The operation's name and its fields' flags; only the flags given are sent."""
    p.add_argument("operation", choices=OPERATIONS, help="what to do with the input")
    group = p.add_argument_group(
        "operation flags",
        "generated from the operation models; each names the operations that take it",
    )
    for flag in FLAGS.values():
        group.add_argument(
            flag.option, dest=flag.dest, help=help_text(flag), **_argparse_kind(flag)
        )


def operation_from(args: argparse.Namespace) -> dict[str, Any]:
    """The operation the flags describe, as the model's input (the caller validates it).
    Raises FlagError for a flag the operation does not take."""
    name = args.operation
    op: dict[str, Any] = {"op": name}
    foreign: list[str] = []
    for flag in FLAGS.values():
        given = getattr(args, flag.dest, None)
        if given is None:
            continue
        use = flag.use_for(name)
        if use is None:
            foreign.append(flag.option)
            continue
        target = op
        for part in flag.path[:-1]:
            target = target.setdefault(part, {})
        target[flag.path[-1]] = _value(given, flag, use.shape)
    if foreign:
        raise FlagError(name, foreign)
    return op


def _value(given: Any, flag: Flag, shape: Shape) -> Any:
    if shape.kind != "list" or shape.item is None:
        return given
    item = shape.item
    return [_item(text.strip(), flag, item) for text in str(given).split(",") if text.strip()]


def _item(text: str, flag: Flag, shape: Shape) -> Any:
    """One element of a list flag: a number where one is expected, else the text as given
    for the model to refuse naming the field; a model item is its fields colon-separated."""
    if shape.kind == "model" and shape.model is not None:
        fields = shape.model.model_fields
        parts = text.split(":")
        if len(parts) > len(fields):
            raise UsageError(f"{flag.option} takes {_metavar(flag, shape)} items, not {text!r}")
        return {
            name: _item(part, flag, shape_of(info.annotation, info.metadata))
            for (name, info), part in zip(fields.items(), parts, strict=False)
            if part
        }
    if shape.base is int:
        return int(text) if text.lstrip("-").isdigit() else text
    if shape.base is float:
        try:
            return float(text)
        except ValueError:
            return text
    return text
