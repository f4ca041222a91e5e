"""The management API client against a fake API on loopback: every unexpected answer is a
BrokerError of its own kind, never success, absence or an unhandled exception."""

import json

import pytest
from pydantic import SecretStr

from ffpool_operator.broker.management import ManagementClient
from ffpool_operator.decisions.broker_model import (
    BrokerAuthFailed,
    BrokerBadAnswer,
    BrokerError,
    BrokerNotFound,
    BrokerUnavailable,
)
from tests.operator_harness import fake_mgmt
from tests.operator_harness.fake_mgmt import Answer


async def _client(url: str) -> ManagementClient:
    return ManagementClient(url, "guest", SecretStr("guest"), timeout=2)


@pytest.mark.parametrize(
    "canned", [fake_mgmt.HTML_LOGIN, fake_mgmt.BAD_JSON, fake_mgmt.WRONG_SHAPE]
)
async def test_unusable_queue_answers_are_bad_answers_not_absent(canned: tuple) -> None:
    async with fake_mgmt.serve(Answer(*canned)) as url:
        api = await _client(url)
        try:
            with pytest.raises(BrokerBadAnswer):
                await api.queue("/", "jobs")
        finally:
            await api.close()


@pytest.mark.parametrize("canned", [fake_mgmt.HTML_LOGIN, fake_mgmt.WRONG_LIST])
async def test_unusable_list_answers_are_bad_answers(canned: tuple) -> None:
    async with fake_mgmt.serve(Answer(*canned)) as url:
        api = await _client(url)
        try:
            for call in (api.connections, api.channels):
                with pytest.raises(BrokerBadAnswer):
                    await call("/")
            with pytest.raises(BrokerBadAnswer):
                await api.bindings("/", "ex", "q")
        finally:
            await api.close()


async def test_a_login_page_is_not_a_successful_write() -> None:
    async with fake_mgmt.serve(Answer(*fake_mgmt.HTML_LOGIN)) as url:
        api = await _client(url)
        try:
            with pytest.raises(BrokerBadAnswer):
                await api.declare_exchange("/", "ex", "direct")
        finally:
            await api.close()


async def test_auth_and_unknown_vhost_have_their_own_errors() -> None:
    answer = Answer(*fake_mgmt.UNAUTHORIZED)
    async with fake_mgmt.serve(answer) as url:
        api = await _client(url)
        try:
            with pytest.raises(BrokerAuthFailed):
                await api.queue("/", "jobs")
            answer.status, answer.body, _ = fake_mgmt.NOT_FOUND
            assert await api.queue("nope", "jobs") is None  # a read: absent
            with pytest.raises(BrokerNotFound):
                await api.declare_exchange("nope", "ex", "direct")  # a write: no such vhost
            answer.status = 503
            with pytest.raises(BrokerUnavailable):
                await api.queue("/", "jobs")
        finally:
            await api.close()


async def test_unreachable_is_unavailable() -> None:
    async with fake_mgmt.serve(Answer(200, "[]")) as url:
        pass  # the port is closed again
    api = await _client(url)
    try:
        with pytest.raises(BrokerUnavailable) as caught:
            await api.queue("/", "jobs")
        assert not isinstance(caught.value, BrokerBadAnswer)
        assert isinstance(caught.value, BrokerError)
    finally:
        await api.close()


async def test_channels_are_parsed_at_the_boundary() -> None:
    raw = [
        {"connection_details": {"name": "c1", "peer_port": 1}, "messages_unacknowledged": 2},
        {"connection_details": [], "messages_unacknowledged": 0},  # a direct (in-broker) client
        {"connection_details": {"name": "c2"}},  # no stats yet
    ]
    answer = Answer(200, json.dumps(raw))
    async with fake_mgmt.serve(answer) as url:
        api = await _client(url)
        try:
            parsed = await api.channels("/")
            assert [(c.connection_name, c.unacked) for c in parsed] == [
                ("c1", 2),
                ("", 0),
                ("c2", 0),
            ]
            answer.body = json.dumps([{"messages_unacknowledged": -1}])
            with pytest.raises(BrokerBadAnswer):
                await api.channels("/")
        finally:
            await api.close()
