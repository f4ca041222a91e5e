"""Log lines: key=value with enums by value, never a repr, and no passwords."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

from ffpool import logs
from ffpool.domain.events import FailedEvent, FailureCode, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.ffmpeg.binaries import Binaries
from ffpool.ffmpeg.executor import Executor
from ffpool.settings import Settings
from ffpool.storage.media import LocalStorage


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`logs.configure()` changes process-wide logging: put it back afterwards."""
    handlers, level = logging.root.handlers[:], logging.root.level
    try:
        yield
    finally:
        structlog.reset_defaults()
        logging.root.handlers[:] = handlers
        logging.root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_enums_are_rendered_by_value(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("INFO")  # here, not in a fixture: it binds the test's captured stderr
    logs.get("test").info("job failed", code=FailureCode.TIMEOUT, state=JobState.FAILED)
    line = capsys.readouterr().err.strip()
    assert line.startswith("timestamp='")
    assert "message='job failed'" in line
    assert "code='timeout'" in line
    assert "state='failed'" in line
    assert "FailureCode" not in line
    assert "JobState" not in line


def test_mask_url_hides_the_password() -> None:
    masked = logs.mask_url("amqp://guest:s3cret@rabbit:5672/vhost")
    assert masked == "amqp://guest:***@rabbit:5672/vhost"


async def test_executor_logs_the_failure_code_as_a_plain_string(tmp_path: Path) -> None:
    """The call site passes `.value` itself (capture_logs bypasses the rendering processors)."""
    settings = Settings(_env_file=None, media_root=tmp_path)
    binaries = Binaries(ffmpeg="/nonexistent/ffmpeg", ffprobe="/nonexistent/ffprobe")
    executor = Executor(settings, LocalStorage(tmp_path), binaries)
    job = Job(spec=JobSpec(input=PathInput(path="missing.mp4"), operation=ProbeOp()))
    with capture_logs() as entries:
        event = await executor.execute(job, lambda _: None)
    assert isinstance(event, FailedEvent)
    [failed] = [e for e in entries if e["event"] == "job failed"]
    assert type(failed["code"]) is str
    assert failed["code"] == FailureCode.INPUT_NOT_FOUND.value
