#!/usr/bin/env bash
# A two-node PostgreSQL 15 + TimescaleDB cluster managed by Patroni, with its own
# one-node etcd, on ports apart from the single-node server (5432). Idempotent.
#
#   deploy/ha.sh up [--async] [--test-tools]   install (when missing), start, wait for a leader and
#                                              a replica, create the application's roles and database
#   deploy/ha.sh down                          stop Patroni (and its postmasters) and etcd; data is kept
#   deploy/ha.sh status                        patronictl list
#
# Synchronous replication by default: a commit returns only once the standby has
# it, so a failover loses no acknowledged write. --async (or CTT_HA_SYNC=0) turns
# it off, for the test that shows what that costs. --test-tools also creates the
# tests' administrator (ctt_admin), as deploy/services.sh --test-tools does.
# The application's roles take their passwords from $CTT_STATE_DIR/secrets, the
# same files the single-node set-up uses; the cluster's own secrets (superuser,
# replication, rewind, REST API) are generated in the cluster's home ($ha below), secrets/.
# TimescaleDB must be installed (deploy/services.sh builds it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
state=${CTT_STATE_DIR:-$repo/.ctt}
# The cluster's home belongs to postgres, outside the checkout: a checkout under a private
# home directory (or a 0700 state directory) is not traversable by postgres. One home per
# state directory, so that two checkouts keep two clusters (on other CTT_HA_* ports).
ha=${CTT_HA_DIR:-/var/lib/postgresql/ctt-ha/$(printf '%s' "$state" | sha256sum | cut -c1-12)}
secrets=$state/secrets
db_name=${CTT_DB_NAME:-ctt}
legacy_owner=""
pg_bin=/usr/lib/postgresql/15/bin
scope=${CTT_HA_SCOPE:-ctt-ha}
pg_ports=("${CTT_HA_PG_PORT1:-5433}" "${CTT_HA_PG_PORT2:-5434}")
rest_ports=("${CTT_HA_REST_PORT1:-8008}" "${CTT_HA_REST_PORT2:-8009}")
etcd_port=${CTT_HA_ETCD_PORT:-2479}
etcd_peer_port=${CTT_HA_ETCD_PEER_PORT:-2480}
sync=${CTT_HA_SYNC:-1}
test_tools=0

log() { printf '[ha] %s\n' "$*" >&2; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
# A daemon must not keep the caller's descriptors (a flock around the set-up would stay held).
detached() {
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        "$@"
    )
}

source "$here/apt.sh"
source "$here/postgres/provision.sh"

install() {
    apt_install patroni etcd-server
    # Debian enables its own etcd and patroni services; ours run on ports of their own.
    if [ -d /run/systemd/system ]; then
        as_root systemctl disable --now patroni etcd >/dev/null 2>&1 || true
    fi
    if [ ! -f "$("$pg_bin/pg_config" --pkglibdir)/timescaledb.so" ]; then
        log "TimescaleDB is not installed: run deploy/services.sh first"; return 1
    fi
}

# ha_secret NAME: a generated secret in $ha/secrets (0600, owned by postgres, who runs Patroni).
ha_secret() {
    secrets=$ha/secrets secret "$1"
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Writes $ha/nodeN.yml (0600, postgres); configuration changes apply at the next start.
node_config() {
    local n=$1 pg_port=${pg_ports[$(($1 - 1))]} rest_port=${rest_ports[$(($1 - 1))]}
    local file=$ha/node$n.yml
    (umask 077 && cat >"$file.new" <<EOF
# Written by deploy/ha.sh; edit the script, not this file.
scope: $scope
name: node$n
restapi:
  listen: 127.0.0.1:$rest_port
  connect_address: 127.0.0.1:$rest_port
  authentication: {username: patroni, password: $(ha_secret rest)}
etcd3: {hosts: 127.0.0.1:$etcd_port}
bootstrap:
  dcs:  # written to etcd once, on first bootstrap; deploy/ha.sh up sets the replication mode
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    primary_start_timeout: 0  # a crashed primary fails over instead of restarting in place
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        shared_preload_libraries: timescaledb
        timescaledb.telemetry_level: 'off'
        wal_log_hints: 'on'
        max_connections: 200
  initdb: [{encoding: UTF8}, data-checksums]
  pg_hba:
  - local all all trust
  - host replication replicator 127.0.0.1/32 scram-sha-256
  - host all all 127.0.0.1/32 scram-sha-256
postgresql:
  listen: 127.0.0.1:$pg_port
  connect_address: 127.0.0.1:$pg_port
  data_dir: $ha/node$n/data
  bin_dir: $pg_bin
  pgpass: $ha/node$n/pgpass
  authentication:
    superuser: {username: postgres, password: $(ha_secret superuser)}
    replication: {username: replicator, password: $(ha_secret replication)}
    rewind: {username: rewind_user, password: $(ha_secret rewind)}
  parameters: {unix_socket_directories: '$ha/node$n'}
EOF
    )
    mv "$file.new" "$file"
    chown postgres: "$file"
}

start_etcd() {
    alive "$ha/etcd.pid" && return 0
    log "starting etcd on 127.0.0.1:$etcd_port"
    detached as_postgres bash -c 'umask 077; nohup "$@" >>"'"$ha"'/etcd.log" 2>&1 & echo $! >"'"$ha"'/etcd.pid"' etcd \
        etcd --name e1 --data-dir "$ha/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
        --initial-cluster "e1=http://127.0.0.1:$etcd_peer_port"
    for _ in $(seq 1 40); do
        curl -fsS "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    log "etcd did not start; see $ha/etcd.log"; return 1
}

start_node() {
    local n=$1
    alive "$ha/node$n.pid" && return 0
    log "starting Patroni node$n (PostgreSQL on 127.0.0.1:${pg_ports[$((n - 1))]})"
    detached as_postgres bash -c 'umask 077; nohup "$@" >>"'"$ha"'/node'"$n"'.log" 2>&1 & echo $! >"'"$ha"'/node'"$n"'.pid"' patroni \
        patroni "$ha/node$n.yml"
}

# rest PORT PATH: HTTP status of a GET on a node's REST API (000 when it does not answer).
rest() { curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1$2" || true; }

leader_index() {
    local i
    for i in 0 1; do
        [ "$(rest "${rest_ports[$i]}" /primary)" = 200 ] && { echo "$i"; return 0; }
    done
    return 1
}

# The leader's postmaster accepts connections on its socket.
leader_accepts() {
    local i
    i=$(leader_index) || return 1
    as_postgres "$pg_bin/pg_isready" -q -h "$ha/node$((i + 1))" -p "${pg_ports[$i]}"
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq 1 $((seconds * 2))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    log "timed out after ${seconds}s waiting for $what; see $ha/node*.log"; return 1
}

# Whether either node's REST API answers 200 on PATH (a health check of Patroni's).
any_node() {
    local i
    for i in 0 1; do
        [ "$(rest "${rest_ports[$i]}" "$1")" = 200 ] && return 0
    done
    return 1
}

# The replication mode lives in etcd (the cluster's dynamic configuration), not in the YAML.
set_mode() {
    local leader=$1 body
    if [ "$sync" = 1 ]; then
        body='{"synchronous_mode": true, "maximum_lag_on_failover": 1048576}'
    else
        # Any replica may be promoted however far behind: the async test shows what is lost.
        body='{"synchronous_mode": false, "maximum_lag_on_failover": 1099511627776}'
    fi
    curl -fsS -o /dev/null --max-time 5 -u "patroni:$(ha_secret rest)" -X PATCH -H 'Content-Type: application/json' \
        -d "$body" "http://127.0.0.1:${rest_ports[$leader]}/config"
}

up() {
    install
    mkdir -p "$ha/secrets"
    chown postgres: "$ha" "$ha/secrets"
    chmod 0700 "$ha" "$ha/secrets"
    for n in 1 2; do
        mkdir -p "$ha/node$n"
        chown postgres: "$ha/node$n"
        chmod 0700 "$ha/node$n"
    done
    for name in superuser replication rewind rest; do ha_secret "$name" >/dev/null; done
    chown -R postgres: "$ha/secrets"
    node_config 1
    node_config 2
    start_etcd
    # Both at once: after a stop, the node that was leader last may be the only one allowed to lead.
    start_node 1
    start_node 2
    wait_for 60 "a leader" leader_index
    local leader
    leader=$(leader_index)
    set_mode "$leader"
    if [ "$sync" = 1 ]; then
        wait_for 90 "a synchronous standby" any_node /synchronous
    else
        wait_for 90 "a streaming replica" any_node '/replica?lag=1MB'
    fi
    # Patroni's REST API can call a node primary a moment before its postmaster takes
    # connections (CI once found the socket refusing): provision once the leader accepts them.
    wait_for 60 "the leader to accept connections" leader_accepts
    leader=$(leader_index)
    provision_database -h "$ha/node$((leader + 1))" -p "${pg_ports[$leader]}"
    log "ready ($([ "$sync" = 1 ] && echo synchronous || echo asynchronous)):" \
        "postgresql://127.0.0.1:${pg_ports[0]},127.0.0.1:${pg_ports[1]}/$db_name?target_session_attrs=read-write"
}

stop_pid() {  # stop_pid PIDFILE: SIGTERM, then SIGKILL after 30 s
    local file=$1 pid
    alive "$file" || { rm -f "$file"; return 0; }
    pid=$(cat "$file")
    kill "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    rm -f "$file"
}

down() {
    local n pid leader
    # The replica first: stopping the leader first would hand leadership over to it.
    leader=$(leader_index || echo 0)
    stop_pid "$ha/node$((2 - leader)).pid"
    stop_pid "$ha/node$((leader + 1)).pid"
    # A postmaster whose Patroni died is reparented to init: stop it by its own PID file.
    for n in 1 2; do
        if [ -f "$ha/node$n/data/postmaster.pid" ]; then
            pid=$(head -n 1 "$ha/node$n/data/postmaster.pid")
            kill -0 "$pid" 2>/dev/null && as_postgres "$pg_bin/pg_ctl" -D "$ha/node$n/data" -m fast stop >/dev/null
        fi
    done
    stop_pid "$ha/etcd.pid"
    log "stopped"
}

status() {
    as_postgres patronictl -c "$ha/node1.yml" list
}

command=${1:-}
shift || true
for arg in "$@"; do
    case "$arg" in
        --async) sync=0 ;;
        --test-tools) test_tools=1 ;;
        *) echo "usage: deploy/ha.sh up|down|status [--async] [--test-tools]" >&2; exit 2 ;;
    esac
done
case "$command" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: deploy/ha.sh up|down|status [--async] [--test-tools]" >&2; exit 2 ;;
esac
