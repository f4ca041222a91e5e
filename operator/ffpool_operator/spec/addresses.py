"""A broker node's address in the spec (`rabbitmq.addresses`): refused by the API server's
pattern and by the pods' own parser (ffpool.broker_addresses) alike, so a pool never renders
pods that crash-loop on RABBITMQ_ADDRESSES."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from ffpool.broker_addresses import BrokerAddress


def _address(text: str) -> str:
    """As the pods will parse RABBITMQ_ADDRESSES: a bad address is an invalid spec here."""
    BrokerAddress.parse(text)
    return text


# The port 1..65535 in the pattern, so the API server refuses what the pods' parser would
# (their crash loop otherwise); the parser itself checks the host when the operator reads it.
_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
HostPort = Annotated[
    str,
    Field(max_length=261, pattern=rf"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):{_PORT}$"),
    AfterValidator(_address),
]
