import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import postgres from "postgres";
import { expect } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant, type TenantTokens } from "../support/clients.js";
import { changedTables, databaseFingerprint } from "../support/db-fingerprint.js";

/** Refused credentials are recorded by the service itself (self-audit); a refusal writes nothing else. */
const serviceRecordsAside = { exceptServiceRecords: true };

import { TEMPLATE, templateAttributes } from "./invalid-requests.js";

/** Where a hostile case arrives: the RPC protocols, the REST routes, the legacy routes, or the bare connection. */
export type Channel = "grpc" | "grpc-web" | "connect" | "rest" | "legacy" | "connection";

/** What a hostile request got back, in protocol-neutral terms. */
export interface Outcome {
  /** The HTTP status, when a response arrived. */
  status?: number;
  /** The RPC status (0 for OK) of a gRPC, gRPC-web or Connect call. */
  code?: Code | 0;
  /** The server refused at the connection or stream level: a reset stream, a closed socket (with the reason). */
  cut?: string;
  /** The fields a google.rpc.BadRequest detail names, or the ErrorInfo's `field` metadata. */
  fields?: string[];
  /** The google.rpc.ErrorInfo reason, when the answer carries one. */
  reason?: string;
  /** What the server said, for failure messages. */
  detail: string;
}

export interface Expectation {
  /** Acceptable RPC codes. */
  codes?: Code[];
  /** Acceptable HTTP statuses (REST, legacy and connection-level cases). */
  statuses?: number[];
  /** The documented ErrorInfo reason the refusal carries. */
  reason?: string;
  /** The fields the refusal names, exactly (none: `[]`). */
  fields?: string[];
  /**
   * The documented connection- or stream-level refusal, when that is the answer: the start of the outcome's `cut`
   * (`RST_STREAM 7`). Any other cut is a failure.
   */
  cut?: string;
  /** A further check of the response; returns what is wrong, if anything. */
  check?: (outcome: Outcome) => string | undefined;
}

export interface HostileCase {
  channel: Channel;
  /** Short, unique enough to reproduce: what was sent and where. */
  label: string;
  expect: Expectation;
  send(signal: AbortSignal): Promise<Outcome>;
}

/** A case whose fast-check counterexample prints as its label rather than its (possibly huge) payload. */
export function hostileCase(c: HostileCase): HostileCase {
  return Object.assign(c, { [fc.toStringMethod]: () => `${c.channel}: ${c.label}` });
}

/** A refused request may take this long; longer is a hang. */
const CASE_TIMEOUT_MS = 15_000;
const NEVER = new Set<Code | 0>([Code.Internal, Code.Unknown, Code.DataLoss]);

/** What is wrong with an outcome, or undefined when it is a clear, expected refusal. */
export function judge(c: HostileCase, o: Outcome): string | undefined {
  const said = `${o.status === undefined ? "" : `HTTP ${o.status} `}${o.code === undefined ? "" : `${Code[o.code] ?? o.code} `}${o.cut ? `cut (${o.cut}) ` : ""}${o.detail.slice(0, 300)}`;
  if (o.code !== undefined && NEVER.has(o.code)) return `got ${said}`;
  if (c.expect.cut !== undefined) {
    return o.cut?.startsWith(c.expect.cut) ? c.expect.check?.(o) : `expected a cut (${c.expect.cut}), got ${said}`;
  }
  if (o.cut !== undefined) return `cut off: ${said}`;
  if (c.expect.codes) {
    if (o.code === undefined || !c.expect.codes.includes(o.code as Code)) {
      return `expected ${c.expect.codes.map((x) => Code[x]).join(" or ")}, got ${said}`;
    }
  } else if (c.expect.statuses) {
    if (o.status === undefined || !c.expect.statuses.includes(o.status)) {
      return `expected HTTP ${c.expect.statuses.join(" or ")}, got ${said}`;
    }
  }
  if (c.expect.reason !== undefined && o.reason !== c.expect.reason) {
    return `expected reason ${c.expect.reason}, got ${o.reason ?? "none"}: ${said}`;
  }
  if (c.expect.fields !== undefined) {
    const named = [...new Set(o.fields ?? [])].sort();
    if (named.join(",") !== [...c.expect.fields].sort().join(",")) {
      return `expected fields [${c.expect.fields.join(", ")}], got [${named.join(", ")}]: ${said}`;
    }
  }
  return c.expect.check?.(o);
}

export interface Target {
  app: TestApp;
  acme: TenantTokens;
  /** A second tenant, whose rows hostile requests aimed at acme must never touch. */
  globex: TenantTokens;
  /** HTTP Basic headers of acme users (Universal Controller authenticates users, not keys). */
  basic: { writer: string; reader: string };
  sql: postgres.Sql;
}

export const USER_PASSWORD = "hostile-password";

/** Thousands of refused logins from one address are the point of these suites; throttling has its own tests. */
const unthrottled = { PASSWORD_FAILURES_PER_USER: "0", PASSWORD_FAILURES_PER_ADDRESS: "0" };

export async function startTarget(env: Record<string, string> = {}): Promise<Target> {
  const app = await startTestApp({ env: { ...unthrottled, ...env } });
  const acme = await provisionTenant(app, "acme");
  const globex = await provisionTenant(app, "globex");
  const admin = clientFor(AdminService, app, "connect", acme.admin);
  // Publish cases need a template; its one required attribute lets them fail on attributes too.
  await admin.createEventTemplate({ template: { name: TEMPLATE, attributes: templateAttributes } });
  const basic = async (username: string, role: Role) => {
    await admin.createUser({ username, password: USER_PASSWORD, roles: [role] });
    return `Basic ${Buffer.from(`acme/${username}:${USER_PASSWORD}`).toString("base64")}`;
  };
  const sql = postgres(app.databaseUrl, { max: 2, onnotice: () => {} });
  return {
    app,
    acme,
    globex,
    basic: { writer: await basic("uc-writer", Role.WRITER), reader: await basic("uc-reader", Role.READER) },
    sql,
  };
}

export async function stopTarget(target: Target | undefined): Promise<void> {
  await target?.sql.end();
  await target?.app.close();
}

/**
 * Runs hostile cases as a fast-check property: each run is a batch sent concurrently, then the service must still
 * answer a health check and a real call, and the database must be exactly as before. A failing batch shrinks to the
 * case that broke it.
 */
export class HostileRun {
  readonly counts = new Map<Channel, number>();
  private baseline: Record<string, string> | undefined;

  constructor(private readonly target: Target) {}

  async fuzz(arbitrary: fc.Arbitrary<HostileCase>, options: { runs: number; batch: number }): Promise<void> {
    this.baseline ??= await databaseFingerprint(this.target.sql, undefined, serviceRecordsAside);
    await fc.assert(
      fc.asyncProperty(fc.array(arbitrary, { minLength: options.batch, maxLength: options.batch }), async (cases) => {
        const problems = (await Promise.all(cases.map((c) => this.runOne(c)))).filter((p) => p !== undefined);
        await this.assertServing();
        const changed = changedTables(
          this.baseline ?? {},
          await databaseFingerprint(this.target.sql, undefined, serviceRecordsAside),
        );
        if (changed.length > 0) problems.push(`the batch wrote to the database: ${changed.join(", ")}`);
        if (problems.length > 0) throw new Error(problems.join("\n"));
      }),
      { numRuns: options.runs, endOnFailure: false },
    );
  }

  /** Sends one case and judges it; counts it under its channel. */
  async runOne(c: HostileCase): Promise<string | undefined> {
    this.counts.set(c.channel, (this.counts.get(c.channel) ?? 0) + 1);
    const signal = AbortSignal.timeout(CASE_TIMEOUT_MS);
    let outcome: Outcome;
    try {
      outcome = await c.send(signal);
    } catch (error) {
      const reason = signal.aborted ? `no answer within ${CASE_TIMEOUT_MS} ms` : String(error);
      return `${c.channel}: ${c.label}: ${reason}`;
    }
    const problem = judge(c, outcome);
    return problem && `${c.channel}: ${c.label}: ${problem}`;
  }

  /** The service answers its health check and a real RPC. */
  async assertServing(): Promise<void> {
    const health = await fetch(`${this.target.app.url}/healthz`);
    expect(health.status).toBe(200);
    await health.arrayBuffer();
    const client = clientFor(AuditService, this.target.app, "connect", this.target.acme.reader);
    await client.list({ pageSize: 1 });
  }

  total(): number {
    return [...this.counts.values()].reduce((a, b) => a + b, 0);
  }

  summary(area: string): string {
    const parts = [...this.counts.entries()].map(([channel, n]) => `${channel} ${n}`).join(", ");
    return `hostile ${area}: ${this.total()} cases (${parts}); nothing written, service healthy`;
  }
}

/**
 * What the process retains after full collections: the JS heap plus ArrayBuffers and other memory outside it
 * (`external`), where request bodies live. Needs node's --expose-gc (vitest.config.ts sets it for the forks). This
 * catches what hostile cases leave behind; peaks while a body streams are test/hostile/streamed-bodies.test.ts's.
 */
export async function settledMemoryBytes(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc to measure memory");
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(20);
  }
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

/**
 * Retained memory returns to its baseline: growth past the tolerance means the hostile cases left something behind
 * (buffers, sessions, listeners). The tolerance absorbs caches and compiled code that a first run creates.
 */
export async function expectMemoryNearBaseline(baselineBytes: number, toleranceBytes = 24 * 1024 * 1024) {
  const after = await settledMemoryBytes();
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  console.log(`heap and external memory after GC: ${mb(baselineBytes)} before the cases, ${mb(after)} after`);
  expect(after - baselineBytes, `retained memory grew from ${mb(baselineBytes)} to ${mb(after)}`).toBeLessThan(
    toleranceBytes,
  );
}
