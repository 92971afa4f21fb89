# Shared by deploy/services.sh and deploy/ha.sh (sourced): generated secrets and the
# application's database roles. The caller defines log, as_postgres, here (deploy/),
# secrets, db_name, legacy_owner and test_tools.

# secret NAME: a long random secret, generated once and kept (0600) in $secrets/NAME.
secret() {
    local file="$secrets/$1"
    (umask 077 && mkdir -p "$secrets")
    chmod 0700 "$secrets"
    if [ ! -s "$file" ]; then
        (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$file.new" && mv "$file.new" "$file")
    fi
    chmod 0600 "$file"
    cat "$file"
}

# provision_database PSQL_ARGS...: the application's roles (deploy/postgres/roles.sql)
# on the server PSQL_ARGS reach as a superuser: no superuser, one owner that runs the
# migrations; each service connects as its own role, with the password in
# $secrets/db-<role>. With test_tools=1 also the tests' administrator, ctt_admin.
provision_database() {
    local role password
    for role in owner ingest api report; do secret "db-ctt_$role" >/dev/null; done
    {
        for role in owner ingest api report; do
            printf "\\set %s_password '%s'\n" "$role" "$(cat "$secrets/db-ctt_$role")"
        done
        printf "\\set db_name '%s'\n\\set legacy_owner '%s'\n" "$db_name" "$legacy_owner"
        cat "$here/postgres/roles.sql"
    } | as_postgres env PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 -d postgres "$@" >/dev/null
    if [ "$test_tools" = 1 ]; then
        password=$(secret db-ctt_admin)
        # The tests' administrator creates and drops their databases (TimescaleDB's
        # extension needs a superuser); the application never connects as it.
        printf "\\set admin_password '%s'\n%s\n" "$password" \
            "SELECT 'CREATE ROLE ctt_admin' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ctt_admin') \\gexec
ALTER ROLE ctt_admin LOGIN SUPERUSER PASSWORD :'admin_password';" |
            as_postgres env PGOPTIONS="-c client_min_messages=warning" psql -q -v ON_ERROR_STOP=1 -d postgres "$@" >/dev/null
    fi
}
