import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { appFixture } from "../support/fixture.js";
import {
  read,
  restTail,
  type TailEnd,
  TailEnded,
  type TailOpener,
  type TailStream,
  tailClients,
} from "./tail-clients.js";

// An open Tail stream is only as good as its credential: it is read again every CREDENTIAL_CACHE_MS and the stream
// ends as a new call would be refused. Each case opens one stream per protocol (Connect JSON and binary, gRPC-web,
// gRPC with connect-es and with @grpc/grpc-js, REST NDJSON and SSE), sees it live, changes the credential, and
// waits for every stream to end with the code and reason.

const CACHE_MS = 300;
/** A recheck every CACHE_MS ends a stream well within this, even on a loaded machine. */
const ENDS_WITHIN_MS = 8000;
const clock = new ManualClock();
let sql: postgres.Sql;
const closers: (() => void)[] = [];
const latencies: number[] = [];

const given = appFixture({ clock, env: { CREDENTIAL_CACHE_MS: String(CACHE_MS) }, tenants: ["acme"] });
beforeAll(async () => {
  sql = postgres(given.app.databaseUrl, { max: 1, onnotice: () => {} });
  await clientFor(AuditService, given.app, "connect", given.acme.writer).create({ event: { action: "first" } });
});
afterAll(async () => {
  for (const close of closers) close();
  await sql?.end();
});

const admin = () => clientFor(AdminService, given.app, "connect", given.acme.admin);

/** One live stream per protocol for `token`: each has delivered the tenant's first event. */
async function openEverywhere(token: string): Promise<Record<string, TailStream>> {
  const { close, ...tails } = tailClients(given.app, token);
  closers.push(close);
  const openers: Record<string, TailOpener> = {
    ...tails,
    "rest-ndjson": restTail(given.app, "acme", token, false),
    "rest-sse": restTail(given.app, "acme", token, true),
  };
  const streams = Object.fromEntries(
    Object.entries(openers).map(([name, open]) => [name, open({ afterSequence: 0n })]),
  );
  for (const [name, stream] of Object.entries(streams)) {
    closers.push(() => stream.close());
    const [event] = await read(stream, 1, 20_000);
    expect(event?.action, name).toBe("first");
  }
  return streams;
}

/** How each stream ends after `change`, and how long each took. */
async function endings(streams: Record<string, TailStream>, change: () => Promise<unknown>) {
  await change();
  const started = Date.now();
  const ends: Record<string, TailEnd> = {};
  await Promise.all(
    Object.entries(streams).map(async ([name, stream]) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${name} was still open ${ENDS_WITHIN_MS} ms after the change`)),
          ENDS_WITHIN_MS,
        );
      });
      try {
        const event = await Promise.race([stream.next(), deadline]);
        throw new Error(`${name} delivered ${event.action} instead of ending`);
      } catch (error) {
        if (!(error instanceof TailEnded)) throw error;
        ends[name] = error.end;
        latencies.push(Date.now() - started);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return ends;
}

function expectAllEnded(ends: Record<string, TailEnd>, code: Code, reason: string) {
  const summary = Object.fromEntries(
    Object.entries(ends).map(([name, end]) => [name, `${Code[end.code]} ${end.reason}`]),
  );
  expect(Object.keys(summary)).toHaveLength(7);
  for (const name of Object.keys(summary)) expect(summary[name], name).toBe(`${Code[code]} ${reason}`);
  // Every ending says where to resume: after the one event delivered, acme's first.
  for (const [name, end] of Object.entries(ends)) {
    expect(end.metadata.lastSequence, name).toBe(String(given.acme.firstSequence));
  }
}

const timeFromNow = (hours: number) => timestampFromMs(Number(clock.nowMicros() / 1000n) + hours * 3_600_000);

describe("an open Tail stream ends when its credential no longer allows it", () => {
  test("key revoked: UNAUTHENTICATED / CREDENTIAL_REVOKED", async () => {
    const { token, credential } = await admin().createApiKey({ name: "revoked", roles: [Role.READER] });
    const streams = await openEverywhere(token);
    const ends = await endings(streams, () => admin().revokeCredential({ id: credential?.id ?? "" }));
    expectAllEnded(ends, Code.Unauthenticated, "CREDENTIAL_REVOKED");
  });

  test("key revoked by another instance (straight in the database): ends within the recheck", async () => {
    const { token, credential } = await admin().createApiKey({ name: "revoked-elsewhere", roles: [Role.READER] });
    const streams = await openEverywhere(token);
    const ends = await endings(
      streams,
      () => sql`update credentials set revoked_at = now() where id = ${credential?.id ?? ""}`,
    );
    expectAllEnded(ends, Code.Unauthenticated, "CREDENTIAL_REVOKED");
  });

  test("key expired: UNAUTHENTICATED / CREDENTIAL_EXPIRED", async () => {
    const { token } = await admin().createApiKey({
      name: "expiring",
      roles: [Role.READER],
      expireTime: timeFromNow(1),
    });
    const streams = await openEverywhere(token);
    const ends = await endings(streams, async () => clock.advanceHours(2));
    expectAllEnded(ends, Code.Unauthenticated, "CREDENTIAL_EXPIRED");
  });

  test("session idle for 72 hours: UNAUTHENTICATED / SESSION_EXPIRED (an open stream is not a use)", async () => {
    await admin().createUser({ username: "idle", password: "idle-password", roles: [Role.READER] });
    const { token } = await clientFor(AdminService, given.app, "connect").login({
      tenant: "acme",
      username: "idle",
      password: "idle-password",
    });
    const streams = await openEverywhere(token);
    const ends = await endings(streams, async () => clock.advanceHours(73));
    expectAllEnded(ends, Code.Unauthenticated, "SESSION_EXPIRED");
  });

  test("session past its 7 days, though in use: UNAUTHENTICATED / SESSION_EXPIRED", async () => {
    await admin().createUser({ username: "busy", password: "busy-password", roles: [Role.READER] });
    const { token } = await clientFor(AdminService, given.app, "connect").login({
      tenant: "acme",
      username: "busy",
      password: "busy-password",
    });
    const streams = await openEverywhere(token);
    const reader = clientFor(AuditService, given.app, "connect", token);
    const ends = await endings(streams, async () => {
      // Used every 48 hours (under the idle limit) until past the absolute one.
      for (let day = 2; day <= 6; day += 2) {
        clock.advanceHours(48);
        await reader.list({ pageSize: 1 });
      }
      clock.advanceHours(48);
    });
    expectAllEnded(ends, Code.Unauthenticated, "SESSION_EXPIRED");
  });

  test("role removed: PERMISSION_DENIED / NO_ROLE, as a new call would be", async () => {
    const { token, credential } = await admin().createApiKey({ name: "demoted", roles: [Role.READER] });
    const streams = await openEverywhere(token);
    const ends = await endings(
      streams,
      () => sql`update credentials set roles = '{}' where id = ${credential?.id ?? ""}`,
    );
    expectAllEnded(ends, Code.PermissionDenied, "NO_ROLE");
  });

  test("role changed to one that cannot Tail: PERMISSION_DENIED / INSUFFICIENT_ROLE", async () => {
    const { token, credential } = await admin().createApiKey({ name: "writer-now", roles: [Role.READER] });
    const streams = await openEverywhere(token);
    const ends = await endings(
      streams,
      () => sql`update credentials set roles = ${[Role.WRITER]} where id = ${credential?.id ?? ""}`,
    );
    expectAllEnded(ends, Code.PermissionDenied, "INSUFFICIENT_ROLE");
  });

  test("a credential that stays valid keeps its stream", async () => {
    const streams = await openEverywhere(given.acme.reader);
    // Several rechecks pass; then the next event still arrives on every stream.
    await new Promise((resolve) => setTimeout(resolve, CACHE_MS * 4));
    await clientFor(AuditService, given.app, "connect", given.acme.writer).create({ event: { action: "second" } });
    for (const [name, stream] of Object.entries(streams)) {
      expect((await read(stream, 1, 20_000))[0]?.action, name).toBe("second");
      stream.close();
    }
  });

  afterAll(() => {
    const worst = Math.max(...latencies);
    console.log(
      `tail credential recheck: ${latencies.length} streams ended, slowest ${worst} ms after the change (CREDENTIAL_CACHE_MS=${CACHE_MS})`,
    );
  });
});

describe("TAIL_MAX_LIFETIME_MS", () => {
  test("ends every stream at its longest life with UNAVAILABLE and where to resume", async () => {
    const short = await startTestApp({ env: { TAIL_MAX_LIFETIME_MS: "2000" } });
    try {
      const tokens = await provisionTenant(short, "life");
      await clientFor(AuditService, short, "connect", tokens.writer).create({ event: { action: "first" } });
      const tails = tailClients(short, tokens.reader);
      const streams = [
        tails.connect,
        tails.grpc,
        tails["grpc-web"],
        tails["grpc-js"],
        restTail(short, "life", tokens.reader, true),
      ].map((open) => open({ afterSequence: 0n }));
      const opened = Date.now();
      for (const stream of streams) await read(stream, 1, 20_000);
      for (const stream of streams) {
        const end = await stream.next().then(
          () => undefined,
          (error: unknown) => (error instanceof TailEnded ? error.end : undefined),
        );
        expect([end?.code, end?.reason, end?.metadata.lastSequence]).toEqual([
          Code.Unavailable,
          "TAIL_LIFETIME_REACHED",
          String(tokens.firstSequence),
        ]);
      }
      expect(Date.now() - opened).toBeGreaterThanOrEqual(1500);
      tails.close();
    } finally {
      await short.close();
    }
  });
});
