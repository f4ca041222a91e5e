"""The RabbitMQ backend (`BACKEND=rabbitmq`): see docs/rabbitmq.md."""

from ffpool.backends.rabbitmq.backend import RabbitBackend

__all__ = ["RabbitBackend"]
