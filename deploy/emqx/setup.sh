#!/bin/sh
# One-shot set-up of the EMQX cluster's files (docker-compose.cluster.yml, service
# emqx-setup, run as root in the project image), then any command given, e.g.
#   docker-compose -f docker-compose.cluster.yml run --rm emqx-setup ctt devices provision truck-1
# so device credentials land in the same volume, owned by the nodes' user afterwards.
# Idempotent: the CA and the certificates are made once (ctt.pki), accounts updated
# only when their secret changed.
set -eu
state=/var/lib/ctt            # CTT_STATE_DIR: $state/pki the CA, $state/mosquitto the brokers' files
etc=$state/mosquitto          # mounted read-only on every node as /ctt/emqx
emqx_uid=1000                 # the emqx/emqx image's user

python -m ctt.pki init --dir "$state/pki" --host emqx1 --host emqx2 --host emqx3
mkdir -p "$etc/tls" /broker-ca
cp "$state/pki/ca.crt" "$state/pki/server.crt" "$state/pki/server.key" "$etc/tls/"
cp "$state/pki/ca.crt" /broker-ca/ca.crt
# Ingest logs in on its own listener (8887) with its own user list; the observer
# on the device listener, where the username is the client id.
python -m ctt.broker_auth --emqx-users "$etc/emqx-backend-users.csv" "ctt-ingest=${CTT_BROKER_PASSWORD}"
python -m ctt.broker_auth --emqx-users "$etc/emqx-users.csv" "ctt-observer=${CTT_OBSERVER_PASSWORD}"
if [ "$#" -gt 0 ]; then "$@"; fi
# The files EMQX reads: its user only (the users files hold hashes, the key is secret).
chown "$emqx_uid" "$etc/tls/server.key" "$etc/emqx-users.csv" "$etc/emqx-backend-users.csv"
chmod 0600 "$etc/tls/server.key"
