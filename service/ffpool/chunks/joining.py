"""A chunked job's last steps on the parent's worker: its audio, encoded once and whole (so
no encoder priming or padding lands at a chunk boundary), and the join of the encoded chunks
without re-encoding into the single run's outputs.

A transcode's chunks are joined straight into the output; a ladder's are joined rung by rung,
then packaged (HLS/DASH) by a stream copy, as ffmpeg/ladder.py's one pass would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from ffpool.chunks import argv as chunk_argv
from ffpool.chunks.plan import ChunkPlan, output_name
from ffpool.chunks.store import ChunkStore
from ffpool.chunks.tools import Tools
from ffpool.domain.events import FailureCode, MediaInfo
from ffpool.domain.jobs import AudioCodec, Container, Job, LadderOp, TranscodeOp, VideoCodec
from ffpool.ffmpeg import ladder
from ffpool.ffmpeg.argv import FFmpegPlan
from ffpool.ffmpeg.outcome import JobFailure

LIST_NAME = "chunks.ffconcat"


class Joiner:
    def __init__(
        self,
        tools: Tools,
        store: ChunkStore,
        job: Job,
        plan: FFmpegPlan,
        info: MediaInfo,
        scratch: Path,
        video_offset_s: float = 0.0,
    ) -> None:
        """`video_offset_s`: how much later than the audio the input's video starts
        (chunks/offsets.py), put back at the join."""
        self._offset = video_offset_s
        self._tools = tools
        self._store = store
        self._job = job
        self._plan = plan
        self._info = info
        self._scratch = scratch
        self._audio: list[Path] = []

    @property
    def _has_audio(self) -> bool:
        return any(s.codec_type == "audio" for s in self._info.streams)

    async def encode_audio(self, src: Path, remaining: Callable[[], float]) -> None:
        op = self._job.spec.operation
        if not self._has_audio:
            return
        binaries, settings = self._tools.binaries, self._tools.settings
        if isinstance(op, TranscodeOp) and op.audio_codec is not AudioCodec.NONE:
            outs = [self._scratch / chunk_argv.audio_name(op)]
            argv = chunk_argv.audio_argv(binaries, settings, op, src, outs[0])
        elif isinstance(op, LadderOp) and op.audio_bitrates_kbps:
            outs = [self._scratch / f"audio-{k}.m4a" for k in range(len(op.audio_bitrates_kbps))]
            argv = ladder.ladder_audio_argv(binaries, settings, op, src, outs)
        else:
            return
        await self._tools.run(argv, remaining)
        self._audio = outs

    async def join(self, chunks: ChunkPlan, remaining: Callable[[], float]) -> None:
        op = self._job.spec.operation
        if isinstance(op, TranscodeOp):
            out = self._plan.outputs[0].temp_path
            audio = self._audio[0] if self._audio else None
            await self._join(
                chunks, None, audio, op.container, out, remaining, op.video_codec, self._offset
            )
            return
        if not isinstance(op, LadderOp):
            raise JobFailure(FailureCode.INTERNAL_ERROR, f"{op.op} is never chunked")
        rungs = ladder.resolve_rungs(op, self._info)
        rung_files = [self._scratch / f"rung-{k}.mkv" for k in range(len(rungs))]
        for k, rung_file in enumerate(rung_files):
            await self._join(chunks, k, None, Container.MKV, rung_file, remaining)
        output_dir = self._plan.output_dir
        if output_dir is None:
            raise JobFailure(FailureCode.INTERNAL_ERROR, "a ladder plan has no output directory")
        argv = ladder.package_argv(
            self._tools.binaries,
            self._tools.settings,
            op,
            rung_files,
            self._audio,
            output_dir,
            self._offset,
        )
        await self._tools.run(argv, remaining)

    async def _join(
        self,
        chunks: ChunkPlan,
        rung: int | None,
        audio: Path | None,
        container: Container,
        out: Path,
        remaining: Callable[[], float],
        video_codec: VideoCodec | None = None,
        video_offset_s: float = 0.0,
    ) -> None:
        """Fetch every chunk's encoded piece (of one rung) and concatenate them into `out`."""
        folder = self._scratch / (f"chunks-out-{rung}" if rung is not None else "chunks-out")
        await asyncio.to_thread(folder.mkdir, exist_ok=True)
        names = [output_name(cut.index, rung) for cut in chunks.cuts]
        for name in names:
            if not await self._store.fetch(self._job.id, name, folder / name):
                raise JobFailure(FailureCode.INTERNAL_ERROR, f"the encoded chunk {name} is missing")
        list_file = folder / LIST_NAME
        # Each chunk starts where the plan says, not where the file before seems to end
        # (Matroska's millisecond timestamps would add up: chunks/argv.py `concat_list`).
        durations = [cut.duration_s for cut in chunks.cuts]
        await asyncio.to_thread(list_file.write_text, chunk_argv.concat_list(names, durations))
        argv = chunk_argv.join_argv(
            self._tools.binaries,
            self._tools.settings,
            list_file,
            audio,
            container,
            out,
            video_codec=video_codec,
            video_offset_s=video_offset_s,
        )
        await self._tools.run(argv, remaining)
