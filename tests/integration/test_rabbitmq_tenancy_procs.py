"""Tenancy through two real `ffpool server` processes and one `ffpool worker` on RabbitMQ:
a job accepted by one server, for one tenant, is that tenant's on the other server and
unknown to every other tenant; keyed ids agree between the servers (shared signing key) and
differ between tenants."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path

import pytest

from ffpool.auth.tokens import file_line, new_token
from tests.integration.rabbit_harness import AMQP_URL, need_broker, prefix_for_test
from tests.integration.rabbit_procs import client, procs, service_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.ffmpeg]
PROBE = {"input": {"kind": "path", "path": "clips/sample.mp4"}, "operation": {"op": "probe"}}
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


async def test_two_server_processes_scope_jobs_by_tenant(media_root: Path, tmp_path: Path) -> None:
    acme, globex = new_token(), new_token()
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{file_line('acme', acme)}\n{file_line('globex', globex)}\n")
    key_file = tmp_path / "signing.key"
    key_file.write_text(secrets.token_hex(32))
    async with prefix_for_test() as prefix:

        def env(instance: str, **extra: str) -> dict[str, str]:
            return service_env(
                prefix,
                media_root,
                instance,
                AMQP_URL,
                auth_tokens_file=tokens,
                signing_key_file=key_file,
                **extra,
            )

        servers = (("server", env("s1")), ("server", env("s2")))
        async with (
            procs(*servers, ("worker", env("w1", max_concurrent_jobs="1"))) as (one, two, _),
            client(one, acme) as acme_one,
            client(two, acme) as acme_two,
            client(two, globex) as globex_two,
        ):
            key = f"k-{uuid.uuid4().hex}"
            first = await acme_one.request({"type": "submit", "job": PROBE, "idempotency_key": key})
            assert first.type == "accepted", first
            job_id = first.job_id
            again = await acme_two.request({"type": "submit", "job": PROBE, "idempotency_key": key})
            assert (again.job_id, again.duplicate) == (job_id, True)
            theirs = await globex_two.request(
                {"type": "submit", "job": PROBE, "idempotency_key": key}
            )
            assert theirs.job_id != job_id
            assert not theirs.duplicate

            for request in ("subscribe", "cancel"):
                refused = await globex_two.request({"type": request, "job_id": job_id})
                unknown = await globex_two.request({"type": request, "job_id": "f" * 32})
                assert refused.code == unknown.code == "unknown_job"
                assert refused.message == unknown.message.replace("f" * 32, job_id)

            await acme_two.send({"type": "subscribe", "job_id": job_id})
            events = await acme_two.until(job_id, TERMINAL)
            assert events[0].type == "state"
            assert globex_two.by_job.get(job_id) is None
