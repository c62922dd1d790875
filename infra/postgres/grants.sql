-- What each role may do inside one of the lab's databases. Run by
-- infra/services.sh as the postgres superuser, connected to that database
-- (once for lab, once for lab_test):
--   psql -d lab -v owner=lab_owner -v app=lab_app < infra/postgres/grants.sql
-- Idempotent: GRANT, REVOKE and ALTER DEFAULT PRIVILEGES may be repeated.

-- The owner owns the schema, so it may create, alter and drop in it.
ALTER SCHEMA public OWNER TO :"owner";

-- Nobody else may create objects in it. PostgreSQL 15 no longer grants CREATE
-- on public to everyone; older versions did, so take it back explicitly.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM :"app";
GRANT USAGE ON SCHEMA public TO :"app";

-- The app reads and writes rows of the tables that exist now...
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"app";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"app";

-- ...and of every table and sequence the owner creates later (the migrations),
-- with no GRANT needed in each migration.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";
