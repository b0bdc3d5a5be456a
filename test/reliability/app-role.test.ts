import { randomBytes } from "node:crypto";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { expectError } from "../support/errors.js";
import { expectAll } from "../support/expect-all.js";
import { newEvents } from "./load.js";

// The service migrates as the database's owner (MIGRATION_DATABASE_URL) and runs as a role of its own (DATABASE_URL)
// that holds only what scripts/app-role.sql grants. Roles are global to the server: a random name per run.
const role = `audit_app_${randomBytes(4).toString("hex")}`;
const password = randomBytes(18).toString("hex");
let database: TestDatabase;
let owner: postgres.Sql;
let asApp: postgres.Sql;
let app: TestApp;

beforeAll(async () => {
  database = await createTestDatabase();
  owner = postgres(database.url, { max: 1, onnotice: () => {} });
  // DDL takes no parameters; the name and password are hex from this file.
  await owner.unsafe(`create role ${role} login password '${password}'`);
  const appUrl = new URL(database.url);
  appUrl.username = role;
  appUrl.password = password;
  app = await startTestApp({
    database: { url: appUrl.toString(), drop: async () => {} },
    env: { DATABASE_URL: appUrl.toString(), MIGRATION_DATABASE_URL: database.url },
  });
  asApp = postgres(appUrl.toString(), { max: 1, onnotice: () => {} });
});

afterAll(async () => {
  await asApp?.end();
  await app?.close();
  await owner?.end();
  await database?.drop();
  // Its grants went with the database; the role itself is the server's.
  const server = postgres(inject("serverUrl"), { max: 1, onnotice: () => {} });
  await server.unsafe(`drop role if exists ${role}`);
  await server.end();
});

/** The SQLSTATE and message a statement fails with, or "ok". */
async function attempt(statement: Promise<unknown>): Promise<string> {
  return statement.then(
    () => "ok",
    (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
  );
}

describe("the application's own database role", () => {
  it("serves every write path the service has", async () => {
    expect(app.logs.some((l) => l.includes("application role granted"))).toBe(true);
    expect(app.logs.some((l) => l.includes("append-only for the application's database role by privilege"))).toBe(true);
    const tokens = await provisionTenant(app, "roles");
    const audit = clientFor(AuditService, app, "connect", tokens.readerWriter);
    const [single] = newEvents("role", 1);
    const created = await audit.create({ event: single });
    // A replay of the same id and content answers with the stored event.
    const replayed = await audit.create({ event: single });
    const batch = await audit.batchCreate({ events: newEvents("role", 5) });
    // Tail hears of new events through the insert trigger's NOTIFY and the service's LISTEN.
    const tailAbort = new AbortController();
    const timer = setTimeout(() => tailAbort.abort(), 10_000);
    const tailed = (async () => {
      // After Create's and BatchCreate's six events: the next one is Publish's.
      const afterSequence = tokens.firstSequence + 5n;
      for await (const res of audit.tail({ afterSequence }, { signal: tailAbort.signal })) return res.event;
    })();
    const admin = clientFor(AdminService, app, "connect", tokens.admin);
    await admin.createEventTemplate({ template: { name: "job.done" } });
    const published = await audit.publish({ eventName: "job.done" });
    const tailedEvent = await tailed;
    tailAbort.abort();
    clearTimeout(timer);
    await admin.deleteEventTemplate({ name: "job.done" });
    const { events } = await audit.list({ pageSize: 100 });
    const key = await admin.createApiKey({ name: "short-lived", roles: [Role.READER] });
    await admin.revokeCredential({ id: key.credential?.id ?? "" });
    await admin.createUser({ username: "alice", password: "correct horse battery", roles: [Role.READER] });
    const session = await clientFor(AdminService, app, "connect").login({
      tenant: "roles",
      username: "alice",
      password: "correct horse battery",
    });
    console.log(
      `app role ${role}: created tenant and keys, Create seq ${created.event?.sequence}, replay seq ` +
        `${replayed.event?.sequence}, BatchCreate seqs ${batch.events.map((e) => e.sequence).join(",")}, ` +
        `template created, Publish seq ${published.event?.sequence}, Tail got seq ${tailedEvent?.sequence}, ` +
        `template deleted, List ${events.length} events, key revoked, user created, ` +
        `session ${session.token ? "issued" : "missing"}`,
    );
    expect(created.event?.sequence).toBe(tokens.firstSequence);
    expect(replayed.event?.sequence).toBe(created.event?.sequence);
    expect(batch.events.map((e) => e.sequence)).toEqual([1n, 2n, 3n, 4n, 5n].map((i) => tokens.firstSequence + i));
    expect(session.token).toMatch(/^ats_/);
    // The revocation was stored: the key is refused.
    await expectError(clientFor(AuditService, app, "connect", key.token).list({}), {
      code: Code.Unauthenticated,
      reason: "CREDENTIAL_REVOKED",
    });
    // The user was stored: its session reads the tenant's events.
    expect((await clientFor(AuditService, app, "connect", session.token).list({ pageSize: 1 })).events).toHaveLength(1);
    // The six events take the six sequences after provisioning's records; the next is the template's creation,
    // recorded by the service (category audit-trail.admin, which List and Tail leave out unless asked for), so
    // Publish took the one after it.
    const first = Number(tokens.firstSequence);
    const publishedAt = tokens.firstSequence + 7n;
    expect(published.event?.sequence).toBe(publishedAt);
    expect(tailedEvent?.sequence).toBe(publishedAt);
    expect(events.map((e) => Number(e.sequence)).sort((a, b) => a - b)).toEqual([
      ...Array.from({ length: 6 }, (_, i) => first + i),
      Number(publishedAt),
    ]);
  });

  it("cannot update, delete, truncate, or get around the trigger on events", async () => {
    const [stored] = await asApp<{ n: number }[]>`select count(*)::int as n from events`;
    expect(stored?.n).toBeGreaterThan(0);
    const answers = {
      update: await attempt(asApp`update events set action = 'rewritten'`),
      delete: await attempt(asApp`delete from events`),
      truncate: await attempt(asApp`truncate events`),
      "disable trigger": await attempt(asApp`alter table events disable trigger events_append_only_rows`),
      "drop trigger": await attempt(asApp`drop trigger events_append_only_rows on events`),
      "drop table": await attempt(asApp`drop table events`),
      "set role owner": await attempt(asApp`set role postgres`),
    };
    console.log(`app role ${role} against events: ${JSON.stringify(answers)}`);
    // Refused by privilege (42501, "permission denied" / "must be owner"), before the trigger would even run.
    expect(answers.update).toMatch(/^42501: permission denied for table events/);
    expect(answers.delete).toMatch(/^42501: permission denied for table events/);
    expect(answers.truncate).toMatch(/^42501: permission denied for table events/);
    for (const ddl of ["disable trigger", "drop trigger", "drop table"] as const) {
      expect(answers[ddl]).toMatch(/^42501: must be owner of (table|relation) events/);
    }
    expect(answers["set role owner"]).toMatch(/^42501: permission denied to set role/);
    // The owner, too, is refused, by the trigger.
    expect(await attempt(owner`update events set action = 'rewritten'`)).toMatch(/append-only: UPDATE refused/);
    const [rewritten] = await owner<{ n: number }[]>`select count(*)::int as n from events where action = 'rewritten'`;
    expect(rewritten?.n).toBe(0);
  });

  it("keeps the verifiable log with what it is granted, and cannot rewrite full tiles or signed checkpoints", async () => {
    const tokens = await provisionTenant(app, "roles-log");
    const audit = clientFor(AuditService, app, "connect", tokens.readerWriter);
    await audit.batchCreate({ events: newEvents("log", 300) });
    const checkpoint = await audit.getCheckpoint({ fresh: true });
    expect(Number(checkpoint.treeSize)).toBeGreaterThanOrEqual(300);
    const proof = await audit.getConsistencyProof({ fromSize: 1n });
    expect(proof.hashes.length).toBeGreaterThan(0);
    const answers = {
      "update tiles": await attempt(asApp`update log_tiles set hashes = ''::bytea`),
      "delete tiles": await attempt(asApp`delete from log_tiles`),
      "update checkpoints": await attempt(asApp`update log_checkpoints set note = ''`),
      "delete checkpoints": await attempt(asApp`delete from log_checkpoints`),
      "delete heads": await attempt(asApp`delete from log_heads`),
    };
    for (const [what, answer] of Object.entries(answers)) expect(answer, what).toMatch(/^42501: permission denied/);
  });

  it("starts without MIGRATION_DATABASE_URL once the database is migrated, and says why not before", async () => {
    const asAppOnly = (url: string) =>
      startTestApp({ database: { url, drop: async () => {} }, env: { DATABASE_URL: url } });
    const second = await asAppOnly(app.databaseUrl);
    await second.close();
    expect(second.logs.some((l) => l.includes("database schema up to date"))).toBe(true);
    const fresh = await createTestDatabase();
    const freshUrl = new URL(fresh.url);
    freshUrl.username = role;
    freshUrl.password = password;
    try {
      await expect(asAppOnly(freshUrl.toString())).rejects.toThrow(/set MIGRATION_DATABASE_URL/);
    } finally {
      await fresh.drop();
    }
  });

  it("holds SELECT on every table, and only SELECT and INSERT on events", async () => {
    const rows = await owner<{ table: string; privileges: string[] }[]>`
      select c.relname as table,
        array(select p from unnest(array['SELECT','INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER']) p
              where has_table_privilege(${role}, c.oid, p)) as privileges
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1`;
    console.log(`app role privileges: ${rows.map((r) => `${r.table} ${r.privileges.join("+")}`).join("; ")}`);
    // A table a new migration adds must be added to scripts/app-role.sql; this fails until it is.
    expectAll(rows, (row) => row.privileges.includes("SELECT"), "tables without SELECT");
    expect(rows.find((r) => r.table === "events")?.privileges).toEqual(["SELECT", "INSERT"]);
  });
});

describe("a service role that could rewrite the log", () => {
  it("is a WARN at start that says what it allows and how to fix it, and /readyz says so too", async () => {
    // The run's server URL names a superuser, as the README's quick start with DATABASE_URL would.
    const superuser = await startTestApp();
    try {
      const warning = superuser.logs.find((l) => l.includes("is a superuser"));
      console.log(`start-up warning: ${warning}`);
      expect(JSON.parse(warning ?? "{}")).toMatchObject({
        level: 40,
        msg: expect.stringMatching(/can delete or rewrite audit events.*Fix: set MIGRATION_DATABASE_URL/),
      });
      const res = await fetch(`${superuser.url}/readyz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: "ready", warnings: [JSON.parse(warning ?? "{}").msg] });
    } finally {
      await superuser.close();
    }
  });

  it("owning events is reported the same way", async () => {
    // The owner of the tables, not a superuser: what MIGRATION_DATABASE_URL names here.
    const ownerRole = `audit_owner_${randomBytes(4).toString("hex")}`;
    await owner.unsafe(`create role ${ownerRole} login password '${password}'`);
    const fresh = await createTestDatabase();
    const admin = postgres(fresh.url, { max: 1, onnotice: () => {} });
    await admin.unsafe(`alter database ${new URL(fresh.url).pathname.slice(1)} owner to ${ownerRole}`);
    await admin.unsafe(`alter schema public owner to ${ownerRole}`);
    await admin.end();
    const ownerUrl = new URL(fresh.url);
    ownerUrl.username = ownerRole;
    ownerUrl.password = password;
    try {
      const asOwner = await startTestApp({
        database: { url: ownerUrl.toString(), drop: async () => {} },
        env: { DATABASE_URL: ownerUrl.toString() },
      });
      await asOwner.close();
      const warning = asOwner.logs.map((l) => JSON.parse(l)).find((l) => l.msg.includes(`"${ownerRole}" owns`));
      expect(warning).toMatchObject({ level: 40, msg: expect.stringContaining("can disable or drop the append-only") });
    } finally {
      await fresh.drop();
      await owner.unsafe(`drop role if exists ${ownerRole}`);
    }
  });

  it("refuses to start with REQUIRE_LEAST_PRIVILEGE=true, and starts as the service's own role", async () => {
    const refused = await createTestDatabase();
    try {
      await expect(startTestApp({ database: refused, env: { REQUIRE_LEAST_PRIVILEGE: "true" } })).rejects.toThrow(
        /^REQUIRE_LEAST_PRIVILEGE="true": refuses to start: the service's database role "\w+" is a superuser/,
      );
    } finally {
      await refused.drop();
    }
    const leastPrivilege = await startTestApp({
      database: { url: app.databaseUrl, drop: async () => {} },
      env: { DATABASE_URL: app.databaseUrl, MIGRATION_DATABASE_URL: database.url, REQUIRE_LEAST_PRIVILEGE: "true" },
    });
    const res = await fetch(`${leastPrivilege.url}/readyz`);
    await leastPrivilege.close();
    expect(await res.json()).toEqual({ status: "ready" });
  });
});
