"""The muxer half of a ladder's argv: how the renditions become an HLS and/or DASH package,
every file name flat and ours (docs/ladders.md, "Outputs").

- HLS and DASH: the `dash` muxer writes the MPD and, with `-hls_playlist 1`, HLS playlists
  over the same fMP4 (CMAF) segments: both formats from one set of files.
- DASH alone: the same without the HLS playlists.
- HLS alone: the `hls` muxer, one variant per rendition (`-var_stream_map`), fMP4 or MPEG-TS
  segments; the audio renditions form one group every video variant refers to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from ffpool.domain.jobs import HlsSegmentType, LadderOp, PackageFormat
from ffpool.ffmpeg.argv_base import file_url
from ffpool.ffmpeg.codecs import num

# The package's own directory inside the run's scratch directory (hidden: never an output).
PACKAGE_DIR: Final = ".package"
MASTER_PLAYLIST: Final = "master.m3u8"
DASH_MANIFEST: Final = "manifest.mpd"
AUDIO_GROUP: Final = "audio"
# DASH templates: $RepresentationID$ is the stream's index, $Number$ counts from 1.
DASH_INIT_NAME: Final = "init-$RepresentationID$.mp4"
DASH_MEDIA_NAME: Final = "seg-$RepresentationID$-$Number%05d$.m4s"
# HLS names: %v is the variant's name (v0.., a0..), %05d the segment's number from 0.
HLS_PLAYLIST_NAME: Final = "media-%v.m3u8"
HLS_INIT_NAME: Final = "init.mp4"  # the muxer makes it init_<variant index>.mp4
HLS_SEGMENT_EXTENSIONS: Final = {HlsSegmentType.FMP4: "m4s", HlsSegmentType.TS: "ts"}
_HLS_SEGMENT_TYPES: Final = {HlsSegmentType.FMP4: "fmp4", HlsSegmentType.TS: "mpegts"}


def muxer_args(op: LadderOp, rungs: int, audios: int, output_dir: Path) -> list[str]:
    """The output half of the argv: video streams 0..rungs-1 then audio 0..audios-1 mapped
    already, written as the package into `output_dir`."""
    if PackageFormat.DASH in op.formats:
        return _dash(op, audios, output_dir, hls=PackageFormat.HLS in op.formats)
    return _hls(op, rungs, audios, output_dir)


def _dash(op: LadderOp, audios: int, output_dir: Path, *, hls: bool) -> list[str]:
    sets = "id=0,streams=v" + (" id=1,streams=a" if audios else "")
    playlists = ["-hls_playlist", "1", "-hls_master_name", MASTER_PLAYLIST] if hls else []
    return [
        *("-f", "dash", "-seg_duration", num(op.segment_seconds)),
        *("-use_template", "1", "-use_timeline", "1", "-dash_segment_type", "mp4"),
        *("-init_seg_name", DASH_INIT_NAME, "-media_seg_name", DASH_MEDIA_NAME),
        *("-adaptation_sets", sets),
        *playlists,
        file_url(output_dir / DASH_MANIFEST),
    ]


def variant_map(rungs: int, audios: int) -> str:
    """`-var_stream_map`: one variant per video rung, each naming the audio group, and one
    per audio rendition in that group."""
    group = f",agroup:{AUDIO_GROUP}" if audios else ""
    video = [f"v:{k}{group},name:v{k}" for k in range(rungs)]
    audio = [f"a:{k}{group},name:a{k}" for k in range(audios)]
    return " ".join([*video, *audio])


def _hls(op: LadderOp, rungs: int, audios: int, output_dir: Path) -> list[str]:
    kind = op.hls_segment_type
    init = ["-hls_fmp4_init_filename", HLS_INIT_NAME] if kind is HlsSegmentType.FMP4 else []
    segments = output_dir / f"seg-%v-%05d.{HLS_SEGMENT_EXTENSIONS[kind]}"
    return [
        *("-f", "hls", "-hls_time", num(op.segment_seconds), "-hls_playlist_type", "vod"),
        *("-hls_segment_type", _HLS_SEGMENT_TYPES[kind], "-hls_flags", "independent_segments"),
        *("-master_pl_name", MASTER_PLAYLIST, *init),
        *("-hls_segment_filename", file_url(segments)),
        *("-var_stream_map", variant_map(rungs, audios)),
        file_url(output_dir / HLS_PLAYLIST_NAME),
    ]
