"""Chunked parallel encoding (docs/chunks.md): a transcode or ladder cut at keyframes into
chunks, each a sub-job on the queue that any worker runs, joined without re-encoding."""
