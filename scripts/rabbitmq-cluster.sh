#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback, for tests (docs/rabbitmq.md, "A three-node cluster on
# one machine (tests)"). The machine's default node (5672/15672, scripts/rabbitmq-setup.sh) is
# never touched: these nodes have their own names, ports and data directory.
#
#   scripts/rabbitmq-cluster.sh start  [DIR]          start the missing nodes, cluster, wait
#   scripts/rabbitmq-cluster.sh stop   [--purge] [DIR] stop all three (--purge: drop their data)
#   scripts/rabbitmq-cluster.sh status [DIR]          one line per node; exit 0 iff 3 running
#
# `start` is idempotent: on a running cluster it only checks it; after a node was killed it
# starts that node again with the same environment (it rejoins from its own data).
set -euo pipefail

# Names and ports, in one place. Node i listens on AMQP_PORTS[i] and MGMT_PORTS[i] (127.0.0.1)
# and talks to its peers on DIST_PORTS[i]; epmd (4369) is shared with the default node.
NODES=(ffp1 ffp2 ffp3)
AMQP_PORTS=(5701 5702 5703)
MGMT_PORTS=(15701 15702 15703)
DIST_PORTS=(25701 25702 25703)
HOST=localhost
BOOT_SECONDS=${RABBIT_CLUSTER_BOOT_SECONDS:-180}
# The /usr/sbin wrappers of Debian's package switch to the rabbitmq user (another HOME, another
# Erlang cookie); these nodes run as the caller and share the caller's ~/.erlang.cookie.
RABBIT_BIN=${RABBIT_BIN:-/usr/lib/rabbitmq/bin}
if [ ! -x "$RABBIT_BIN/rabbitmq-server" ] && command -v rabbitmq-server >/dev/null; then
    RABBIT_BIN=$(dirname "$(readlink -f "$(command -v rabbitmq-server)")")
fi

usage() {
    echo "usage: $0 start|stop|status [--purge] [DIR]" >&2
    exit 2
}

CMD=${1:-}
shift || true
PURGE=
if [ "${1:-}" = "--purge" ]; then PURGE=1; shift; fi
DIR=$(realpath -m "${1:-${TMPDIR:-/tmp}/ffpool-rabbit-cluster}")

name() { echo "${NODES[$1]}@$HOST"; }
home() { echo "$DIR/${NODES[$1]}"; }
api() { echo "http://127.0.0.1:${MGMT_PORTS[$1]}/api"; }
get() { curl -sf -m 3 -u guest:guest "$(api "$1")/$2"; }
ctl() {
    local i=$1
    shift
    "$RABBIT_BIN/rabbitmqctl" -q -n "$(name "$i")" "$@"
}

# The node answers its management API (so its rabbit application is running).
api_up() { get "$1" overview 2>/dev/null | grep -q "\"node\":\"$(name "$1")\""; }

# The OS process of the node started from DIR is alive (its pid file, checked against the
# process's environment so a reused pid is not mistaken for it: the node name is not on the
# command line).
pid_of() { cat "$(home "$1")/pid" 2>/dev/null || true; }
alive() {
    local pid
    pid=$(pid_of "$1")
    [ -n "$pid" ] && tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null |
        grep -qx "RABBITMQ_NODENAME=$(name "$1")"
}

# How many members node i sees running.
running_members() {
    get "$1" nodes 2>/dev/null | grep -o '"running":true' | wc -l || true
}

configure() {
    local i=$1 h
    h=$(home "$i")
    mkdir -p "$h/log"
    cat >"$h/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:${AMQP_PORTS[$i]}
management.tcp.port = ${MGMT_PORTS[$i]}
management.tcp.ip = 127.0.0.1
EOF
    # The offline form of `rabbitmq-plugins enable`: a plugin enabled on a booting node never
    # starts (scripts/rabbitmq-setup.sh says why).
    echo "[rabbitmq_management]." >"$h/enabled_plugins"
}

launch() {
    local i=$1 h
    h=$(home "$i")
    configure "$i"
    env RABBITMQ_NODENAME="$(name "$i")" \
        RABBITMQ_USE_LONGNAME=false \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="${AMQP_PORTS[$i]}" \
        RABBITMQ_DIST_PORT="${DIST_PORTS[$i]}" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        RABBITMQ_MNESIA_BASE="$h/mnesia" \
        RABBITMQ_LOG_BASE="$h/log" \
        RABBITMQ_CONFIG_FILE="$h/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$h/enabled_plugins" \
        RABBITMQ_PID_FILE="$h/pid" \
        "$RABBIT_BIN/rabbitmq-server" -detached >>"$h/server.out" 2>&1
}

# Poll `check` (a command) once a second until it succeeds or BOOT_SECONDS have passed.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + BOOT_SECONDS))
    until "$@"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "rabbitmq-cluster: $what: not within ${BOOT_SECONDS} s (logs: $DIR/*/log)" >&2
            exit 1
        fi
        sleep 1
    done
}

cookie_ready() { [ -s "$HOME/.erlang.cookie" ]; }
all_members_running() { [ "$(running_members 0)" -eq "${#NODES[@]}" ]; }
sees_first() { get "$1" nodes 2>/dev/null | grep -q "\"name\":\"$(name 0)\""; }

join() {
    local i=$1 out
    out="$(home "$i")/join.out"
    # The CLI logs harmless errors about tables of nodes not yet up while joining: keep them out
    # of the way unless the join fails.
    if ! { ctl "$i" stop_app && ctl "$i" join_cluster "$(name 0)" && ctl "$i" start_app; } \
        >"$out" 2>&1; then
        cat "$out" >&2
        echo "rabbitmq-cluster: $(name "$i") could not join $(name 0)" >&2
        exit 1
    fi
}

start() {
    mkdir -p "$DIR"
    local i
    for i in "${!NODES[@]}"; do
        if api_up "$i" || alive "$i"; then continue; fi
        launch "$i"
        # A first node creates the cookie; the others must not race it to a different one.
        cookie_ready || wait_for "the Erlang cookie ($HOME/.erlang.cookie)" cookie_ready
    done
    for i in "${!NODES[@]}"; do
        wait_for "$(name "$i") management API on $(api "$i")" api_up "$i"
    done
    for i in "${!NODES[@]}"; do
        if [ "$i" -gt 0 ] && ! sees_first "$i"; then join "$i"; fi
    done
    wait_for "${#NODES[@]} running members" all_members_running
    for i in "${!NODES[@]}"; do wait_for "$(name "$i") after joining" api_up "$i"; done
    show
}

show() {
    local i
    for i in "${!NODES[@]}"; do
        printf '%s amqp://guest:guest@127.0.0.1:%s/ http://127.0.0.1:%s/ pid=%s\n' \
            "$(name "$i")" "${AMQP_PORTS[$i]}" "${MGMT_PORTS[$i]}" "$(pid_of "$i")"
    done
}

stop() {
    local i pid pids=()
    for i in "${!NODES[@]}"; do
        # Only nodes started from DIR (another DIR's nodes are left to their own `stop`);
        # `shutdown` returns once the node's OS process has exited.
        if alive "$i"; then
            ctl "$i" shutdown >/dev/null 2>&1 &
            pids+=($!)
        fi
    done
    for pid in "${pids[@]}"; do wait "$pid" || true; done
    for i in "${!NODES[@]}"; do
        if alive "$i"; then
            echo "rabbitmq-cluster: $(name "$i") did not stop; killing pid $(pid_of "$i")" >&2
            kill -KILL "$(pid_of "$i")" || true
        fi
    done
    if [ -n "$PURGE" ]; then
        for i in "${!NODES[@]}"; do rm -rf "$(home "$i")"; done
    fi
}

status() {
    local i state code=0
    for i in "${!NODES[@]}"; do
        if api_up "$i"; then
            state="running members=$(running_members "$i")"
        elif alive "$i"; then
            state=booting
            code=1
        else
            state=down
            code=1
        fi
        echo "$(name "$i") $state amqp=${AMQP_PORTS[$i]} management=${MGMT_PORTS[$i]}"
    done
    if [ "$code" -eq 0 ] && ! all_members_running; then code=1; fi
    return "$code"
}

case "$CMD" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
