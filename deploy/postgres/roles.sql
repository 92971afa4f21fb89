-- The application's database roles, created by a superuser before migrations run
-- (deploy/services.sh locally, deploy/postgres/init-roles.sh in docker-compose).
-- psql variables: owner_password, ingest_password, api_password, report_password,
-- db_name, legacy_owner (a role whose objects become ctt_owner's; empty for none).
-- Idempotent: run it again and it only resets the passwords and attributes.
--
-- ctt_owner owns the schema and runs the migrations; ctt_ingest, ctt_api and
-- ctt_report own nothing and get only what schema/013_roles.sql grants them.
-- None is a superuser or may create roles or databases, bypass row security,
-- replicate, or run programs on the server (COPY ... TO PROGRAM).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I LOGIN', r) FROM unnest(ARRAY['ctt_owner', 'ctt_ingest', 'ctt_api', 'ctt_report']) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE ctt_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'owner_password';
ALTER ROLE ctt_ingest LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'ingest_password';
ALTER ROLE ctt_api LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'api_password';
ALTER ROLE ctt_report LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'report_password';
-- No membership in any role (pg_execute_server_program, pg_read_server_files, ...).
SELECT format('REVOKE %I FROM %I', g.rolname, m.rolname)
FROM pg_auth_members am JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
WHERE m.rolname IN ('ctt_owner', 'ctt_ingest', 'ctt_api', 'ctt_report') \gexec

SELECT format('CREATE DATABASE %I OWNER ctt_owner', :'db_name')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db_name') \gexec
SELECT format('ALTER DATABASE %I OWNER TO ctt_owner', :'db_name') \gexec
\connect :db_name
-- TimescaleDB is not a trusted extension: only a superuser creates it.
CREATE EXTENSION IF NOT EXISTS timescaledb;
-- An installation migrated by a superuser before these roles existed: its
-- tables (and their chunks) become the owner's.
SELECT format('REASSIGN OWNED BY %I TO ctt_owner', :'legacy_owner')
WHERE :'legacy_owner' <> '' AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'legacy_owner')
  AND EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = :'legacy_owner') \gexec
