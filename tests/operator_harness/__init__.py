"""Harness for operator tests: KMock (with the tests/kmock_ext.py fixes) as the Kubernetes API,
the real operator in its own thread and loop, and the real broker with unique names per test."""
