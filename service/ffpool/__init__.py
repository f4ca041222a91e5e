"""ffpool: FFmpeg as a service over WebSocket, on an in-memory or RabbitMQ backend."""

__version__ = "0.1.0"
