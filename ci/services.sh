#!/usr/bin/env bash
# Starts the real services the tests use (PostgreSQL, Redis) if they are not running, and
# waits until each answers. Fails loudly if one cannot be brought up.
set -euo pipefail

PG_HOST=127.0.0.1 PG_PORT=5432
REDIS_HOST=127.0.0.1 REDIS_PORT=6379

# True if something accepts TCP connections on host:port.
port_open() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

pg_ready() {
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        port_open "$PG_HOST" "$PG_PORT"
    fi
}

redis_ready() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]
    else
        port_open "$REDIS_HOST" "$REDIS_PORT"
    fi
}

wait_for() {
    local name=$1 check=$2
    for _ in $(seq 1 60); do
        if "$check"; then
            echo "services: $name is up"
            return 0
        fi
        sleep 0.5
    done
    echo "services: $name did not answer within 30 s" >&2
    return 1
}

if ! pg_ready; then
    echo "services: starting PostgreSQL"
    if ls /etc/postgresql >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    else
        echo "services: PostgreSQL is not installed (no /etc/postgresql)" >&2
        exit 1
    fi
fi
wait_for PostgreSQL pg_ready

if ! redis_ready; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no
fi
wait_for Redis redis_ready
