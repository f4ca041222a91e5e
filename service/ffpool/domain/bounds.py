"""How big what a job returns and what a server retains may be: pure functions, no I/O.

A 0.4 MB upload with 1,000 audio streams made each `probe` result ~1 MB in memory and each
`completed` event 96 KB on the wire (docs/security.md, "Limits: records, disk and uploads").
Metadata is therefore cut to MAX_STREAMS streams (`streams_truncated: true` says so) with short
strings, and a retained record is cut to MAX_RECORD_BYTES serialized (`truncated: true`).
"""

from __future__ import annotations

from typing import Final

from ffpool.domain.events import (
    CompletedEvent,
    JobRecord,
    MediaInfo,
    StreamInfo,
)

# Real media has a handful of streams; a few dozen covers multi-language films with subtitles.
MAX_STREAMS: Final = 32
# Codec and format names are short ("h264", "mov,mp4,m4a,3gp,3g2,mj2"); nothing longer is real.
MAX_NAME_CHARS: Final = 64
# What is left of a failure's message when a record must shrink (its stderr tail goes first).
MAX_MESSAGE_CHARS: Final = 1024
ELLIPSIS: Final = "…"


def cap(text: str | None, limit: int = MAX_NAME_CHARS) -> str | None:
    """`text` cut to at most `limit` characters, ending in an ellipsis when it was cut."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - len(ELLIPSIS)] + ELLIPSIS


def bound_stream(stream: StreamInfo) -> StreamInfo:
    if all(len(s or "") <= MAX_NAME_CHARS for s in (stream.codec_type, stream.codec_name)):
        return stream
    update = {"codec_type": cap(stream.codec_type), "codec_name": cap(stream.codec_name)}
    return stream.model_copy(update=update)


def bound_media_info(info: MediaInfo | None) -> MediaInfo | None:
    """At most MAX_STREAMS streams (the first ones, flagged when more existed), short names."""
    if info is None:
        return None
    names = [info.format_name, *(n for s in info.streams for n in (s.codec_type, s.codec_name))]
    if len(info.streams) <= MAX_STREAMS and all(len(n or "") <= MAX_NAME_CHARS for n in names):
        return info
    streams = info.streams[:MAX_STREAMS]
    return info.model_copy(
        update={
            "format_name": cap(info.format_name),
            "streams": tuple(bound_stream(s) for s in streams),
            "streams_truncated": info.streams_truncated or len(info.streams) > MAX_STREAMS,
        }
    )


def record_bytes(record: JobRecord) -> int:
    """What a record weighs, as served (`GET /jobs/{id}`): its JSON size."""
    return len(record.model_dump_json())


def _without_streams(record: JobRecord) -> JobRecord:
    result = record.result
    if result is None or result.metadata is None or not result.metadata.streams:
        return record
    metadata = result.metadata.model_copy(update={"streams": (), "streams_truncated": True})
    return _with_result(record, result.model_copy(update={"metadata": metadata}))


def _short_failure(record: JobRecord) -> JobRecord:
    failure = record.failure
    if failure is None:
        return record
    message = cap(failure.message, MAX_MESSAGE_CHARS) or ""
    short = failure.model_copy(update={"message": message, "stderr_tail": ""})
    return record.model_copy(update={"failure": short})


def _without_metadata(record: JobRecord) -> JobRecord:
    if record.result is None:
        return record
    return _with_result(record, record.result.model_copy(update={"metadata": None}))


def _with_result(record: JobRecord, result: CompletedEvent) -> JobRecord:
    return record.model_copy(update={"result": result})


def bound_record(record: JobRecord, max_bytes: int) -> tuple[JobRecord, int]:
    """The record cut to at most `max_bytes` of JSON, and its size. Cut in order of least use:
    stream details, then the failure's stderr tail, then all metadata; outputs (the download
    links) stay. A cut record says `truncated: true`. A record made only of what the job spec
    bounds (outputs, ids) is kept whole even if it is still larger."""
    record = _bounded_metadata(record)
    size = record_bytes(record)
    if size <= max_bytes:
        return record, size
    for shrink in (_without_streams, _short_failure, _without_metadata):
        record = shrink(record).model_copy(update={"truncated": True})
        size = record_bytes(record)
        if size <= max_bytes:
            break
    return record, size


def _bounded_metadata(record: JobRecord) -> JobRecord:
    result = record.result
    if result is None or result.metadata is None:
        return record
    metadata = bound_media_info(result.metadata)
    if metadata is result.metadata:
        return record
    return _with_result(record, result.model_copy(update={"metadata": metadata}))
