#!/bin/sh
# docker-compose: the timescaledb container runs this once, when its volume is
# initialised, as the image's superuser (/docker-entrypoint-initdb.d). It creates
# the application's roles from the passwords in the environment; the
# application's containers never connect as the superuser.
set -eu
for var in CTT_DB_OWNER_PASSWORD CTT_DB_INGEST_PASSWORD CTT_DB_API_PASSWORD CTT_DB_REPORT_PASSWORD; do
    eval "value=\${$var:-}"
    case "$value" in
        "" | *"'"* | *"\\"*) echo "init-roles: $var must be set, without quotes or backslashes" >&2; exit 1 ;;
    esac
    [ "${#value}" -ge 24 ] || { echo "init-roles: $var is shorter than 24 characters" >&2; exit 1; }
done
{
    printf "\\set owner_password '%s'\n" "$CTT_DB_OWNER_PASSWORD"
    printf "\\set ingest_password '%s'\n" "$CTT_DB_INGEST_PASSWORD"
    printf "\\set api_password '%s'\n" "$CTT_DB_API_PASSWORD"
    printf "\\set report_password '%s'\n" "$CTT_DB_REPORT_PASSWORD"
    printf "\\set db_name '%s'\n\\set legacy_owner ''\n" "${POSTGRES_DB:-ctt}"
    cat /ctt/roles.sql
} | psql -q -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres
