#!/usr/bin/env bash
# Install (when missing) and start the services the backend needs on a Debian 12
# machine: PostgreSQL 15 + TimescaleDB and a project-owned Mosquitto instance.
# Idempotent: with everything installed and running it only checks and exits.
#
#   deploy/services.sh [--test-tools] [--database-only]
# --test-tools also starts the test suite's own broker (port 1884), installs
# docker-compose and creates the tests' database administrator (ctt_admin).
# --database-only sets up PostgreSQL (roles included) and leaves Mosquitto alone.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
state=${CTT_STATE_DIR:-$repo/.ctt}
pg_version=15
pg_cluster=main
broker_port=${CTT_BROKER_PORT:-1883}
test_broker_port=${CTT_TEST_BROKER_PORT:-1884}
db_name=${CTT_DB_NAME:-ctt}
# Installations set up before the application had its own roles: the objects
# this superuser created become ctt_owner's.
legacy_owner=${CTT_DB_LEGACY_OWNER:-ctt}
secrets=$state/secrets
ingest_user=${CTT_BROKER_USERNAME:-ctt-ingest}
observer_user=ctt-observer
# Devices connect over TLS: client certificates on the first port, secrets on the second.
cert_port=${CTT_BROKER_CERT_PORT:-8883}
secret_port=${CTT_BROKER_SECRET_PORT:-8885}
test_cert_port=${CTT_TEST_BROKER_CERT_PORT:-8884}
test_secret_port=${CTT_TEST_BROKER_SECRET_PORT:-8886}
tls_bind=${CTT_BROKER_TLS_BIND:-0.0.0.0}
# The project CA (ctt.pki); extra names devices use for this broker: CTT_BROKER_TLS_HOSTS="host1 host2".
pki=$state/pki
tls_hosts=${CTT_BROKER_TLS_HOSTS:-}
# ctt.pki needs the pinned `cryptography`: the checkout's venv (./dev creates it).
python=${CTT_PYTHON:-$repo/.venv/bin/python}
test_tools=0
database_only=0
for arg in "$@"; do
    case "$arg" in
        --test-tools) test_tools=1 ;;
        --database-only) database_only=1 ;;
        *) echo "usage: deploy/services.sh [--test-tools] [--database-only]" >&2; exit 2 ;;
    esac
done

log() { printf '[services] %s\n' "$*" >&2; }
# A daemon outlives this script: it must not keep the caller's descriptors (a
# `flock` around the set-up would otherwise stay held as long as the broker runs).
detached() {
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            [ "$fd" -gt 2 ] && eval "exec $fd>&-"
        done
        exec "$@"
    )
}
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"
source "$(dirname "${BASH_SOURCE[0]}")/postgres/provision.sh"

# --- PostgreSQL 15 + TimescaleDB -------------------------------------------------
pg_pkglibdir() { "/usr/lib/postgresql/$pg_version/bin/pg_config" --pkglibdir 2>/dev/null || pg_config --pkglibdir; }

install_postgres() {
    apt_install "postgresql-$pg_version" "postgresql-client-$pg_version"
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}' | grep -qx "$pg_version/$pg_cluster"; then
        log "creating cluster $pg_version/$pg_cluster"
        as_root pg_createcluster "$pg_version" "$pg_cluster" >/dev/null
    fi
}

# Debian 12 has no TimescaleDB package; build the Apache-2 part from Debian 13's
# source package. A private apt configuration lists trixie as deb-src only, so
# the machine's binary sources stay untouched.
install_timescaledb() {
    if [ -f "$(pg_pkglibdir)/timescaledb.so" ]; then return 0; fi
    apt_install "postgresql-server-dev-$pg_version" cmake gcc make libssl-dev dpkg-dev xz-utils
    local src="${TMPDIR:-/tmp}/ctt-timescaledb-src"
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
    mkdir -p "$src/lists/partial" "$src/etc"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri trixie main" >"$src/etc/sources.list"
    local aptopts=(-o "Dir::Etc::SourceList=$src/etc/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                   -o "Dir::State::Lists=$src/lists")
    log "fetching TimescaleDB source (Debian 13 source package)"
    as_root apt-get "${aptopts[@]}" update -qq
    (cd "$src" && as_root apt-get "${aptopts[@]}" source --download-only -qq timescaledb)
    local orig
    orig=$(ls "$src"/timescaledb_*.orig.tar.* | head -n 1)
    rm -rf "$src/build-tree" && mkdir -p "$src/build-tree"
    tar -xf "$orig" -C "$src/build-tree" --strip-components=1
    log "building TimescaleDB (about a minute)"
    (
        cd "$src/build-tree"
        PATH="/usr/lib/postgresql/$pg_version/bin:$PATH" ./bootstrap -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF \
            -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF -DUSE_TELEMETRY=OFF \
            -DGENERATE_DOWNGRADE_SCRIPT=OFF -DPG_CONFIG="/usr/lib/postgresql/$pg_version/bin/pg_config" >/dev/null
        cd build && make -j"$(nproc)" >/dev/null && as_root make install >/dev/null
    )
}

configure_postgres() {
    local confdir="/etc/postgresql/$pg_version/$pg_cluster/conf.d"
    local conf="$confdir/ctt.conf"
    local want
    want=$(cat "$here/postgres/ctt.conf")
    if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
        log "writing $conf"
        printf '%s\n' "$want" | as_root tee "$conf" >/dev/null
        pg_restart_needed=1
    fi
}

start_postgres() {
    local status
    status=$(pg_lsclusters -h | awk -v v="$pg_version" -v c="$pg_cluster" '$1==v && $2==c {print $4}')
    if [ "$status" = online ] && [ "${pg_restart_needed:-0}" = 1 ]; then
        log "restarting PostgreSQL for new settings"
        as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" restart
    elif [ "$status" != online ]; then
        log "starting PostgreSQL $pg_version/$pg_cluster"
        as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_cluster" start
    fi
    for _ in $(seq 1 60); do
        as_postgres pg_isready -q -h /var/run/postgresql && return 0
        sleep 0.5
    done
    log "PostgreSQL did not become ready"; return 1
}

# --- Mosquitto ---------------------------------------------------------------------
# The backend runs its own broker instance (config from deploy/mosquitto, state in
# $state/mosquitto) rather than the Debian service, so its settings are the
# project's: persistence, queue limits, per-device passwords and ACL.
broker_pid() {  # broker_pid DIR
    local pidfile="$1/mosquitto.pid" pid
    [ -f "$pidfile" ] || return 1
    pid=$(cat "$pidfile")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install_mosquitto() {
    if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
        apt_install mosquitto mosquitto-clients
        # The package starts the Debian service on 1883; ours takes its place.
        if [ -d /run/systemd/system ]; then
            as_root systemctl disable --now mosquitto >/dev/null 2>&1 || true
        else
            as_root /etc/init.d/mosquitto stop >/dev/null 2>&1 || true
            as_root update-rc.d mosquitto disable >/dev/null 2>&1 || true
        fi
    fi
}

# The project CA, the broker's TLS certificate and the CRL, created once (ctt.pki).
init_pki() {
    local hosts=() h result
    for h in $tls_hosts; do hosts+=(--host "$h"); done
    if [ ! -x "$python" ] && [ -z "${CTT_PYTHON:-}" ]; then
        log "$python is missing: run ./dev (it creates .venv) or set CTT_PYTHON"; return 1
    fi
    result=$(PYTHONPATH="$repo" "$python" -m ctt.pki init --dir "$pki" "${hosts[@]}")
    [ "$result" = unchanged ] || log "certificate authority in $pki: created $result"
}

# broker NAME PORT CERT_PORT SECRET_PORT TLS_BIND: configure and start (or reload) one
# instance in $state/NAME. Listeners are read only at start: a changed
# mosquitto.conf restarts the broker (sessions persist); passwords, ACL and CRL
# are reloaded with SIGHUP.
broker() {
    local dir="$state/$1" port=$2 conf_changed=0 changed=0 pid result ingest_password observer_password
    mkdir -p "$dir/data"
    sed -e "s|@STATE@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@USER@|$(id -un)|g" -e "s|@PKI@|$pki|g" \
        -e "s|@CERT_PORT@|$3|g" -e "s|@SECRET_PORT@|$4|g" -e "s|@TLS_BIND@|$5|g" \
        "$here/mosquitto/mosquitto.conf.in" >"$dir/mosquitto.conf.new"
    cp "$here/mosquitto/acl" "$dir/acl.new"
    if ! cmp -s "$dir/mosquitto.conf.new" "$dir/mosquitto.conf"; then conf_changed=1; fi
    for f in mosquitto.conf acl; do
        if ! cmp -s "$dir/$f.new" "$dir/$f"; then mv "$dir/$f.new" "$dir/$f"; changed=1; else rm "$dir/$f.new"; fi
    done
    [ -f "$dir/passwd" ] || { : >"$dir/passwd"; changed=1; }
    chmod 0700 "$dir"
    chmod 0600 "$dir/passwd"
    # Backend accounts with long random secrets ($secrets/broker-*, made once; the
    # environment may override them); devices are added by `ctt devices provision`.
    ingest_password=${CTT_BROKER_PASSWORD:-$(secret "broker-$ingest_user")}
    observer_password=${CTT_OBSERVER_PASSWORD:-$(secret "broker-$observer_user")}
    result=$(PYTHONPATH="$repo" "$python" -m ctt.broker_auth --file "$dir/passwd" \
        "$ingest_user=$ingest_password" "$observer_user=$observer_password")
    [ "$result" = unchanged ] || changed=1
    if pid=$(broker_pid "$dir"); then
        if [ "$conf_changed" = 1 ]; then
            log "restarting Mosquitto ($1) for its new listeners"
            kill "$pid"
            for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        elif [ "$changed" = 1 ]; then
            log "reloading Mosquitto ($1)"
            kill -HUP "$pid"
            return 0
        else
            return 0
        fi
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is taken by another process (the Debian mosquitto service, or a broker"
        log "of another checkout?); stop it or choose another port"
        return 1
    fi
    log "starting Mosquitto ($1) on 127.0.0.1:$port (plaintext), $5:$3 (TLS, certificates), $5:$4 (TLS, secrets)"
    detached /usr/sbin/mosquitto -c "$dir/mosquitto.conf" -d
    for _ in $(seq 1 40); do
        broker_pid "$dir" >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
        sleep 0.25
    done
    log "Mosquitto did not start; see $dir/mosquitto.log"; return 1
}

main() {
    install_postgres
    install_timescaledb
    configure_postgres
    start_postgres
    provision_database -h /var/run/postgresql
    if [ $database_only = 1 ]; then
        log "ready: postgresql://127.0.0.1:5432/$db_name (roles ctt_owner, ctt_ingest, ctt_api, ctt_report)"
        return 0
    fi
    install_mosquitto
    init_pki
    broker mosquitto "$broker_port" "$cert_port" "$secret_port" "$tls_bind"
    if [ $test_tools = 1 ]; then
        # The tests' own broker: their devices and sessions never reach the
        # broker a local ingest or demo uses.
        broker mosquitto-test "$test_broker_port" "$test_cert_port" "$test_secret_port" 127.0.0.1
        apt_install docker-compose
    fi
    log "ready: postgresql://127.0.0.1:5432/$db_name (passwords in $secrets), mqtt://127.0.0.1:$broker_port"
}

main
