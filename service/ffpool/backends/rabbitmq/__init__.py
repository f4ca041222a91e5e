"""The RabbitMQ backend (`BACKEND=rabbitmq`): see docs/rabbitmq.md."""

from ffpool.backends.rabbitmq.backend import (
    RabbitNode,
    build_node,
    build_server,
    build_worker,
)
from ffpool.backends.rabbitmq.server import RabbitServer
from ffpool.backends.rabbitmq.worker import RabbitWorker

__all__ = [
    "RabbitNode",
    "RabbitServer",
    "RabbitWorker",
    "build_node",
    "build_server",
    "build_worker",
]
