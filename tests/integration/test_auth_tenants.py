"""Tenants at the edge of a real service: another tenant's job answers exactly like an unknown
one (WebSocket and HTTP), outputs travel as signed links, the client sends its token, and the
secure default refuses to serve anonymously off loopback unless told to."""

from __future__ import annotations

from pathlib import Path

import pytest
from yarl import URL

from ffpool import logs, names
from ffpool.app import running
from ffpool.client.session import Client, ClientError
from ffpool.domain.events import CompletedEvent
from ffpool.domain.jobs import JobSpec, PathInput, ThumbnailOp
from tests.integration.auth_harness import bearer, conn_as, http_status, secured
from tests.integration.service import settings_for, submit

pytest_plugins = ["tests.integration.auth_fixtures"]
EVERYWHERE = "0.0.0.0"


async def test_another_tenants_job_answers_like_an_unknown_one(
    media_root: Path, tmp_path: Path
) -> None:
    async with secured(media_root, tmp_path) as (svc, tokens):
        async with conn_as(svc, tokens["acme"]) as acme:
            await acme.send(submit({"op": "thumbnail"}, request_id="mine"))
            job_id = (await acme.expect("accepted")).job_id
            completed = (await acme.until_terminal(job_id))[-1]
        [out] = completed.outputs  # a file that exists, of another tenant's job
        unknown_id = "f" * 32
        async with conn_as(svc, tokens["globex"]) as globex:
            answers = []
            for target in (job_id, unknown_id):
                for kind in ("subscribe", "cancel"):
                    await globex.send({"type": kind, "job_id": target, "request_id": kind})
                    error = await globex.expect("error")
                    assert error.job_id == target
                    # The same answer but for the id the client sent itself.
                    answer = error.model_dump(exclude={"job_id"})
                    answers.append({**answer, "message": error.message.replace(target, "ID")})
            assert answers[:2] == answers[2:]
            assert (answers[0]["code"], answers[0]["message"]) == ("unknown_job", "no job ID")
        other = bearer(tokens["globex"])
        for path in ("/jobs/{}", f"/jobs/{{}}/outputs/{out.name}"):
            theirs = await http_status("GET", svc.http_url + path.format(job_id), other)
            nobodys = await http_status("GET", svc.http_url + path.format(unknown_id), other)
            assert theirs == nobodys
            assert theirs[0] == 404
        mine = await http_status("GET", f"{svc.http_url}/jobs/{job_id}", bearer(tokens["acme"]))
        assert mine[0] == 200


async def test_outputs_are_signed_links_that_need_no_token(
    media_root: Path, tmp_path: Path
) -> None:
    async with secured(media_root, tmp_path) as (svc, tokens):
        async with conn_as(svc, tokens["acme"]) as acme:
            await acme.send(submit({"op": "thumbnail"}))
            job_id = (await acme.expect("accepted")).job_id
            completed = (await acme.until_terminal(job_id))[-1]
        [out] = completed.outputs
        link = URL(svc.http_url).join(URL(out.url))
        assert set(link.query) == {"expires", "sig"}
        status, body = await http_status("GET", str(link))
        assert status == 200
        assert body.startswith(b"\xff\xd8")  # a JPEG
        sig = link.query["sig"]
        tampered = link.update_query(sig=("0" if sig[0] != "0" else "1") + sig[1:])
        later = link.update_query(expires=int(link.query["expires"]) + 1)
        other_file = link.with_name("other.jpg").with_query(link.query)
        for refused in (tampered, later, other_file, link.with_query(None)):
            assert (await http_status("GET", str(refused)))[0] == 401, refused
        # A lookup signs afresh too.
        _, record = await http_status(
            "GET", f"{svc.http_url}/jobs/{job_id}", bearer(tokens["acme"])
        )
        assert "sig=" in record["result"]["outputs"][0]["url"]


async def test_the_client_sends_its_token(media_root: Path, tmp_path: Path) -> None:
    async with secured(media_root, tmp_path) as (svc, tokens):
        async with Client(svc.ws_url, svc.http_url, token=tokens["acme"]) as client:
            upload_id = await client.upload(media_root / "clips" / "sample.mp4")
            assert len(upload_id) == 32
            spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp())
            accepted = await client.submit(spec)
            outcome = await client.wait(accepted.job_id, timeout=60)
            assert isinstance(outcome, CompletedEvent), outcome
            [out] = outcome.outputs
            saved = await client.download(out, tmp_path / "out")
            assert saved.stat().st_size == out.size
        with pytest.raises(Exception, match="401"):
            async with Client(svc.ws_url, svc.http_url, token="ffp_wrong"):
                pass


async def test_refuses_to_serve_anonymously_off_loopback(media_root: Path) -> None:
    with pytest.raises(SystemExit, match="ALLOW_ANONYMOUS"):
        async with running(settings_for(media_root, host=EVERYWHERE)):
            pass


async def test_a_missing_tokens_file_or_short_key_stops_the_start(
    media_root: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="cannot read AUTH_TOKENS_FILE"):
        async with running(settings_for(media_root, auth_tokens_file=tmp_path / "missing")):
            pass
    (tmp_path / "key").write_text("short")
    with pytest.raises(SystemExit, match="SIGNING_KEY_FILE"):
        async with running(settings_for(media_root, signing_key_file=tmp_path / "key")):
            pass


@pytest.mark.usefixtures("restore_logging")
async def test_anonymous_access_when_switched_on_says_so_loudly(
    media_root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    logs.configure("INFO")
    settings = settings_for(media_root, host=EVERYWHERE, allow_anonymous=True)
    async with running(settings) as svc:
        status, health = await http_status("GET", svc.http_url + names.HEALTH_PATH)
        assert status == 200
        assert health["anonymous"] is True
        assert "anonymous access is on" in health["warning"]
        async with conn_as(svc, "") as c:  # no usable token: anonymous
            await c.send({"type": "ping"})
            await c.expect("pong")
    err = capfd.readouterr().err
    assert "level='warning' message='ANONYMOUS ACCESS IS ON" in err


async def test_a_submit_over_the_tenants_disk_quota_is_refused(
    media_root: Path, tmp_path: Path
) -> None:
    """The WebSocket edge asks storage before submitting (docs/protocol.md, "Disk quotas")."""
    clip = media_root / "clips" / "sample.mp4"
    quota = clip.stat().st_size  # one upload fills it exactly
    spec = JobSpec(input=PathInput(path="clips/sample.mp4"), operation=ThumbnailOp())
    async with secured(media_root, tmp_path, tenant_disk_quota_bytes=quota) as (svc, tokens):
        async with Client(svc.ws_url, svc.http_url, token=tokens["acme"]) as acme:
            await acme.upload(clip)
            with pytest.raises(ClientError) as refused:
                await acme.submit(spec)
            assert refused.value.error.code == "quota_exceeded"
        async with Client(svc.ws_url, svc.http_url, token=tokens["globex"]) as globex:
            accepted = await globex.submit(spec)
            assert (await globex.wait(accepted.job_id, timeout=60)).type == "completed"
