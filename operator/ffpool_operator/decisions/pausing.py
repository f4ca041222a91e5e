"""Pausing a pool's autoscaling by annotation, pure (docs/operator.md, "Pausing autoscaling"),
as KEDA users know it from `autoscaling.keda.sh/paused` and `.../paused-replicas`:

- `autoscaling.ffpool.dev/paused: "true"`: the daemon keeps the worker count where it is;
- `autoscaling.ffpool.dev/paused-replicas: "N"`: it sets the workers to N and holds them there
  (it pauses by itself, and wins over `paused`), but never below the busy workers: a scale-down
  takes only idle pods, as an autoscaled one does, and the rest go at later polls once idle.

An invalid value is ignored, as if the annotation were absent, and said in a Warning Event:
guessing what `"yes"` or `"-1"` means would scale on a misreading."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from ffpool import names
from ffpool_operator.decisions.scaling import Decision

MAX_PAUSED_REPLICAS = 1000  # the bound of workers.replicas
_BOOLEANS = {"true": True, "false": False}


class Pause(BaseModel):
    model_config = ConfigDict(frozen=True)

    paused: bool = False
    replicas: int | None = None
    """The count paused-replicas asks for; None holds the count where it is."""
    problems: tuple[str, ...] = ()
    """Each invalid annotation, in words (what it says, what is allowed)."""


def parse(annotations: Mapping[str, str] | None) -> Pause:
    ann = annotations or {}
    problems: list[str] = []
    paused = False
    raw = ann.get(names.ANNOTATION_PAUSED)
    if raw is not None:
        value = _BOOLEANS.get(raw.strip().lower())
        if value is None:
            problems.append(
                f'{names.ANNOTATION_PAUSED}: "{raw[:64]}" is neither "true" nor "false": ignored'
            )
        paused = bool(value)
    replicas = None
    raw = ann.get(names.ANNOTATION_PAUSED_REPLICAS)
    if raw is not None:
        text = raw.strip()
        if text.isascii() and text.isdigit() and int(text) <= MAX_PAUSED_REPLICAS:
            replicas = int(text)
        else:
            problems.append(
                f'{names.ANNOTATION_PAUSED_REPLICAS}: "{raw[:64]}" is not a whole number from 0'
                f" to {MAX_PAUSED_REPLICAS}: ignored"
            )
    return Pause(paused=paused or replicas is not None, replicas=replicas, problems=tuple(problems))


def paused_decision(pause: Pause, base: Decision, busy: int) -> Decision:
    """What a paused pool does instead of `base` (the decision the queue asked for, whose
    history it keeps, so that the scale-down window goes on counting while paused)."""
    current = base.current
    if pause.replicas is None:
        desired = current
        reason = f"paused by annotation {names.ANNOTATION_PAUSED} → holding {current} workers"
    else:
        desired = max(pause.replicas, min(busy, current))
        reason = f"paused by annotation {names.ANNOTATION_PAUSED_REPLICAS} → {desired} workers"
        if desired > pause.replicas:
            reason += f" (kept: {busy} busy)"
    return base.model_copy(
        update={"desired": desired, "reason": reason, "fallback": False, "paused": True}
    )
