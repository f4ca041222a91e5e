"""pydantic's validation errors in the command line's words: the flag (`--height`, or
`renditions[1].height` for an item of a list flag), the value given, and what is allowed,
never pydantic's `tagged-union[...]` text. Pure: used by cli/errors.py."""

from __future__ import annotations

import re
from typing import Any, Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ffpool.cli.model_shapes import as_typed, number
from ffpool.cli.op_flags import FLAGS, OPERATION_MODELS, OPERATIONS, option_for

# The job's other fields, and the input kinds by the flag that gives each.
SPEC_FLAGS: Final = {
    "output": "--output",
    "callback": "--callback",
    "priority": "--priority",
    "idempotency_key": "--key",
}
INPUT_FLAGS: Final = {"path": "--path", "upload": "--file", "url": "--url", "s3": "--s3"}
MAX_SHOWN: Final = 4
MAX_VALUE: Final = 60
MAX_REFUSAL: Final = 300
BOUND_WORDS: Final = {
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "more than"),
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
}
TYPE_WORDS: Final = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
}
# pydantic's phrases in the server's messages (protocol.describe_validation_error), in ours.
PHRASES: Final = (
    (re.compile(r"Input should be greater than or equal to "), "must be at least "),
    (re.compile(r"Input should be less than or equal to "), "must be at most "),
    (re.compile(r"Input should be greater than "), "must be more than "),
    (re.compile(r"Input should be "), "must be "),
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"^Field required$"), "missing"),
    (re.compile(r"^Extra inputs are not permitted$"), "not taken by this operation"),
)
SERVER_PART: Final = re.compile(r"^([\w]+(?:\.[\w]+)*): (.+)$")


def is_users(exc: ValidationError) -> bool:
    """Whether the error is about what the user gave (the job, its flags) rather than a
    server's answer the client could not read."""
    title = exc.title
    return (
        title.startswith(("tagged-union[", "function-after["))
        or title in {"JobSpec", "Submit", "Chunking", "Rendition"}
        or title in {model.__name__ for model in OPERATION_MODELS.values()}
    )


def describe_invalid(exc: ValidationError) -> str:
    """`invalid --crf: 99 (must be at most 63); missing --duration (trim needs it)`."""
    errors = exc.errors(include_url=False)
    locs = [error["loc"] for error in errors]
    parts = list(
        dict.fromkeys(_one(error) for error in errors if not _counted_after_failure(error, locs))
    )
    if len(parts) > MAX_SHOWN:
        parts = [*parts[:MAX_SHOWN], f"and {len(parts) - MAX_SHOWN} more"]
    return "; ".join(parts)


def _counted_after_failure(error: ErrorDetails, locs: list[tuple[str | int, ...]]) -> bool:
    """pydantic counts a list's items after validation: when an item failed, the list is
    also "too short". The item's error says what is wrong; the count would mislead."""
    loc = error["loc"]
    return error["type"] == "too_short" and any(
        len(other) > len(loc) and other[: len(loc)] == loc for other in locs
    )


def where(loc: tuple[str | int, ...]) -> tuple[str, str | None]:
    """The flag a location names, in the command line's terms, and the operation (if any)."""
    parts = list(loc)
    for wrapper in ("submit", "job"):
        if parts[:1] == [wrapper]:
            parts.pop(0)
    if parts[:1] == ["operation"] and len(parts) > 1 and parts[1] in OPERATIONS:
        parts.pop(0)
    op = str(parts.pop(0)) if parts and parts[0] in OPERATIONS else None
    if len(parts) >= 2 and parts[0] == "input":
        return INPUT_FLAGS.get(str(parts[1]), "--" + str(parts[1])), op
    if len(parts) == 1 and parts[0] in SPEC_FLAGS:
        return SPEC_FLAGS[str(parts[0])], op
    if not parts:
        return (f"{op} operation" if op else "job"), op
    named = option_for(tuple(parts))
    if named is not None:
        return named, op
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip("."), op


def shown(value: Any) -> str:
    """The value given, as typed: numbers plain, text quoted and cut short."""
    if isinstance(value, str):
        text = value if len(value) <= MAX_VALUE else value[: MAX_VALUE - 1] + "…"
        return repr(text)
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    return as_typed(value)


def allowed(error: ErrorDetails) -> str:
    """What would have been accepted, from the error's type and ctx."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind in BOUND_WORDS:
        key, words = BOUND_WORDS[kind]
        return f"must be {words} {number(ctx.get(key))}"
    if kind in ("enum", "literal_error"):
        return "must be one of " + ", ".join(re.findall(r"'([^']*)'", str(ctx.get("expected"))))
    if kind in TYPE_WORDS:
        return f"must be {TYPE_WORDS[kind]}"
    if kind in ("too_short", "too_long"):
        if kind == "too_short":
            return f"needs at least {ctx.get('min_length')} item(s)"
        return f"takes at most {ctx.get('max_length')} item(s)"
    if kind in ("string_too_short", "string_too_long"):
        bound = ctx.get("min_length", ctx.get("max_length"))
        words = "at least" if kind == "string_too_short" else "at most"
        return f"must be {words} {bound} characters"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')}"
    return plain(error["msg"])


def plain(message: str) -> str:
    """pydantic's wording made ours: `Input should be ...` → `must be ...`."""
    for pattern, words in PHRASES:
        message = pattern.sub(words, message)
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message


def _one(error: ErrorDetails) -> str:
    kind, value = error["type"], error.get("input")
    name, op = where(error["loc"])
    if kind == "missing":
        return f"missing {name}" + (f" ({op} needs it)" if op else "")
    if kind == "extra_forbidden":
        return f"{name} is not taken by {op or 'this model'}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        ctx = error.get("ctx") or {}
        given = f" {ctx['tag']!r}" if "tag" in ctx else ""
        return f"invalid operation{given}: must be one of {', '.join(OPERATIONS)}"
    if kind in ("value_error", "assertion_error"):
        return _model_level(error, name, op)
    return f"invalid {name}: {shown(value)} ({allowed(error)})"


def _model_level(error: ErrorDetails, name: str, op: str | None) -> str:
    """A rule across fields (a model validator): names the first field it mentions that was
    given, with its value; the message's field names become flags."""
    ctx = error.get("ctx") or {}
    raw = str(ctx.get("error", plain(error["msg"])))
    fields = _flag_of_field(op)
    message = re.sub(r"\b\w+\b", lambda m: fields.get(m.group(0), m.group(0)), raw)
    given = error.get("input")
    if isinstance(given, dict):
        for word in re.findall(r"\b\w+\b", raw):
            if word in fields and word in given:
                return f"invalid {fields[word]}: {shown(given[word])} ({message})"
    return f"invalid {name}: {message}"


def _flag_of_field(op: str | None) -> dict[str, str]:
    """Field name → flag for the fields `op` takes at its top level (with no operation
    known, only names no English word could be: those with an underscore)."""
    found: dict[str, str] = {}
    for flag in FLAGS.values():
        if len(flag.path) != 1:
            continue
        field = flag.path[0]
        if (op is not None and flag.use_for(op)) or (op is None and "_" in field):
            found[field] = flag.option
    return found


def describe_refusal(message: str) -> str:
    """The server's `invalid_job` message (`job.operation.transcode.crf: Input should be ...;
    ...`) in the same words, where its parts name fields; else the message, trimmed."""
    parts = []
    pieces = [part.strip() for part in message.split("; ")]
    locs = [m.group(1) for piece in pieces if (m := SERVER_PART.match(piece))]
    for piece in pieces:
        match = SERVER_PART.match(piece)
        if match is None:
            parts.append(piece)
            continue
        dotted, said = match.group(1), plain(match.group(2))
        if "after validation" in said and any(o.startswith(dotted + ".") for o in locs):
            continue  # the item's own error says it (_counted_after_failure)
        loc = tuple(int(p) if p.isdigit() else p for p in dotted.split("."))
        name, _ = where(loc)
        parts.append(f"missing {name}" if said == "missing" else f"invalid {name}: {said}")
    text = "; ".join(parts)
    return text if len(text) <= MAX_REFUSAL else text[: MAX_REFUSAL - 1] + "…"
