-- The lab's roles and databases, created idempotently by infra/services.sh
-- as the postgres superuser, connected to the "postgres" database:
--   psql -v owner=... -v owner_password=... -v app=... -v app_password=...
--        -v db=... -v test_db=... < infra/postgres/roles.sql
-- The names and passwords come from the URLs in .env (else .env.example).
--
--   owner (lab_owner)  owns both databases and their public schema; migrations
--                      run as this role.
--   app   (lab_app)    what the API connects as: may log in and read and write
--                      rows, nothing more (see grants.sql).
--
-- CREATE ROLE and CREATE DATABASE have no IF NOT EXISTS, so each is built as a
-- string only when missing and run by \gexec. The ALTERs after them run every
-- time, so a role that drifted (a changed password, say) is put right.

SELECT format('CREATE ROLE %I', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I', :'app')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app') \gexec

ALTER ROLE :"owner" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'owner_password';
ALTER ROLE :"app" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'app_password';

-- UTF8 whatever the cluster's default (a cluster made under LANG=C would give
-- SQL_ASCII); C.UTF-8 is a locale every Debian system has. template0 is the
-- template that allows choosing them.
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0 ENCODING %L LOCALE %L',
              name, :'owner', 'UTF8', 'C.UTF-8')
FROM (VALUES (:'db'), (:'test_db')) AS wanted(name)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = name) \gexec

ALTER DATABASE :"db" OWNER TO :"owner";
ALTER DATABASE :"test_db" OWNER TO :"owner";
GRANT CONNECT ON DATABASE :"db" TO :"app";
GRANT CONNECT ON DATABASE :"test_db" TO :"app";
