#!/usr/bin/env bash
# Make sure the local broker runs with its management API (port 15672) answering.
# `rabbitmq-server -detached` returns before the node is up, and a plugin enabled then becomes an
# "offline change" that never starts the API: enable offline first, then start, then poll.
set -euo pipefail
API=${RABBITMQ_API:-http://127.0.0.1:15672/api/overview}

api_up() { curl -sf -m 2 -u guest:guest "$API" >/dev/null 2>&1; }
node_up() { rabbitmqctl -q ping >/dev/null 2>&1; }

if api_up; then exit 0; fi
if node_up; then
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
else
    rabbitmq-plugins -q --offline enable rabbitmq_management >/dev/null
    rabbitmq-server -detached >/dev/null 2>&1 || true
fi
for _ in $(seq 1 90); do
    if api_up; then echo "setup: RabbitMQ management API is up"; exit 0; fi
    sleep 1
done
echo "setup: RabbitMQ management API did not come up on $API" >&2
exit 1
