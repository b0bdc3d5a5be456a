-- What the service's own database role (DATABASE_URL) may do when migrations run as another role
-- (MIGRATION_DATABASE_URL; the embedded PostgreSQL always does: its owner is postgres, the service's role audit_app).
-- The service applies this file after every migration run, so a new table is granted in the same release that
-- creates it. To apply it by hand, as the role that owns the tables:
--
--   psql "$MIGRATION_DATABASE_URL" -v app_role=audit_app -f scripts/app-role.sql
--
-- The audit log is append-only for this role by privilege, not only by trigger: SELECT and INSERT on events, never
-- UPDATE, DELETE or TRUNCATE, and it owns nothing, so it cannot drop or disable the trigger either.
-- Every statement is idempotent. docs/reliability.md explains the deployment.

GRANT USAGE ON SCHEMA public TO :"app_role";

-- Taken away first, so a broader grant made earlier by hand does not survive a restart.
REVOKE ALL ON events FROM :"app_role";
GRANT SELECT, INSERT ON events TO :"app_role";

-- The per-tenant sequence counter: the row lock and last_sequence update that keep sequences gapless.
GRANT SELECT, INSERT, UPDATE ON tenant_sequences TO :"app_role";

-- The page-token key, created once by whichever instance starts first.
GRANT SELECT, INSERT ON server_secrets TO :"app_role";

-- Tenants are created, never changed or removed.
GRANT SELECT, INSERT ON tenants TO :"app_role";

-- API keys, users, sessions: revocation, last-used time and the bootstrap token's rotation update rows.
GRANT SELECT, INSERT, UPDATE ON credentials TO :"app_role";

-- Event templates for Publish: created and deleted whole, never changed.
GRANT SELECT, INSERT, DELETE ON event_templates TO :"app_role";

-- The verifiable log (docs/verifiable-log.md): the head row per tenant moves with every append; full tiles and signed
-- checkpoints are written once and never changed.
GRANT SELECT, INSERT, UPDATE ON log_heads TO :"app_role";
GRANT SELECT, INSERT ON log_tiles TO :"app_role";
GRANT SELECT, INSERT ON log_checkpoints TO :"app_role";

-- drizzle's record of applied migrations, read only: an instance started without MIGRATION_DATABASE_URL checks that
-- the schema is current and starts without migrating.
GRANT USAGE ON SCHEMA drizzle TO :"app_role";
GRANT SELECT ON drizzle.__drizzle_migrations TO :"app_role";
