import { Code, ConnectError } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, describe, expect, test } from "vitest";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { startTestApp, type TestApp } from "../support/app.js";
import { clientFor, provisionTenant } from "../support/clients.js";
import { expectAll } from "../support/expect-all.js";

// Password guesses (Login and HTTP Basic) are slowed per user and per client address, the scrypt work running at
// once is bounded, and a user's sessions are capped. Everything over the network, against a real database.

const PASSWORD = "right-password-1";
const apps: TestApp[] = [];
afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
});

async function appWith(env: Record<string, string>) {
  const app = await startTestApp({ env });
  apps.push(app);
  const tokens = await provisionTenant(app, "acme");
  const admin = clientFor(AdminService, app, "connect", tokens.admin);
  return { app, tokens, admin };
}

interface Outcome {
  code: Code | 0;
  reason?: string;
  retryMs?: number;
  ms: number;
}

async function attempt(call: () => Promise<unknown>): Promise<Outcome> {
  const started = performance.now();
  try {
    await call();
    return { code: 0, ms: performance.now() - started };
  } catch (e) {
    const error = ConnectError.from(e);
    const retry = error.findDetails(RetryInfoSchema)[0]?.retryDelay;
    return {
      code: error.code,
      reason: error.findDetails(ErrorInfoSchema)[0]?.reason,
      retryMs: retry ? Number(retry.seconds) * 1000 + retry.nanos / 1e6 : undefined,
      ms: performance.now() - started,
    };
  }
}

const login = (app: TestApp, username: string, password: string) => () =>
  clientFor(AdminService, app, "connect").login({ tenant: "acme", username, password });

const basicList = (app: TestApp, username: string, password: string) => () =>
  fetch(`${app.url}/v1/tenants/acme/events?pageSize=1`, {
    headers: { authorization: `Basic ${Buffer.from(`acme/${username}:${password}`).toString("base64")}` },
  }).then(async (res) => {
    if (res.status === 200) return;
    const status = (await res.json()) as { code: number; details: { reason?: string; retryDelay?: string }[] };
    const delay = status.details.find((d) => d.retryDelay)?.retryDelay;
    throw new ConnectError("REST", status.code, undefined, [
      { desc: ErrorInfoSchema, value: { reason: status.details.find((d) => d.reason)?.reason } },
      ...(delay
        ? [{ desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(Math.round(Number.parseFloat(delay))) } } }]
        : []),
    ]);
  });

describe("password guessing", () => {
  test("per user: after PASSWORD_FAILURES_PER_USER failures each attempt waits, doubling; a right password then resets", async () => {
    const { app, admin } = await appWith({ PASSWORD_FAILURES_PER_USER: "3", PASSWORD_FAILURES_PER_ADDRESS: "0" });
    await admin.createUser({ username: "ann", password: PASSWORD, roles: [Role.READER] });
    for (let i = 0; i < 3; i++) {
      expect((await attempt(login(app, "ann", `wrong-${i}`))).reason).toBe("INVALID_PASSWORD");
    }
    // Refused at once, without a hash: even the right password (else guessing would go on), over Login and Basic.
    const throttled = await attempt(login(app, "ann", PASSWORD));
    expect([throttled.code, throttled.reason]).toEqual([Code.ResourceExhausted, "PASSWORD_ATTEMPTS_THROTTLED"]);
    expect(throttled.retryMs).toBeGreaterThan(0);
    expect(throttled.retryMs).toBeLessThanOrEqual(1000);
    const overBasic = await attempt(basicList(app, "ann", "wrong-again"));
    expect([overBasic.code, overBasic.reason]).toEqual([Code.ResourceExhausted, "PASSWORD_ATTEMPTS_THROTTLED"]);
    // Another user of the same tenant is not affected.
    await admin.createUser({ username: "bob", password: PASSWORD, roles: [Role.READER] });
    expect((await attempt(login(app, "bob", PASSWORD))).code).toBe(0);

    // After the wait, one more wrong guess doubles it.
    await new Promise((resolve) => setTimeout(resolve, throttled.retryMs));
    expect((await attempt(login(app, "ann", "wrong-3"))).reason).toBe("INVALID_PASSWORD");
    const doubled = await attempt(login(app, "ann", PASSWORD));
    expect(doubled.reason).toBe("PASSWORD_ATTEMPTS_THROTTLED");
    expect(doubled.retryMs).toBeGreaterThan(1000);
    expect(doubled.retryMs).toBeLessThanOrEqual(2000);
    await new Promise((resolve) => setTimeout(resolve, doubled.retryMs));
    expect((await attempt(login(app, "ann", PASSWORD))).code).toBe(0);
    // Success cleared the count: three more failures are allowed again.
    for (let i = 0; i < 3; i++)
      expect((await attempt(login(app, "ann", `again-${i}`))).reason).toBe("INVALID_PASSWORD");
  });

  test("per address: guesses spread over many user names are slowed too, and cost no hash once throttled", async () => {
    const { app } = await appWith({ PASSWORD_FAILURES_PER_USER: "0", PASSWORD_FAILURES_PER_ADDRESS: "5" });
    const guesses: Outcome[] = [];
    for (let i = 0; i < 5; i++) guesses.push(await attempt(login(app, `user-${i}`, "guess")));
    expect(guesses.map((g) => g.reason)).toEqual(Array(5).fill("INVALID_PASSWORD"));
    const throttled: Outcome[] = [];
    for (let i = 5; i < 25; i++) throttled.push(await attempt(basicList(app, `user-${i}`, "guess")));
    expect(new Set(throttled.map((t) => `${Code[t.code]} ${t.reason}`))).toEqual(
      new Set(["ResourceExhausted PASSWORD_ATTEMPTS_THROTTLED"]),
    );
    const hashMs = Math.min(...guesses.map((g) => g.ms));
    const refusedMs = throttled.map((t) => t.ms).sort((a, b) => a - b)[10] as number;
    console.log(
      `password guard: a checked guess ${hashMs.toFixed(0)} ms, a throttled one ${refusedMs.toFixed(1)} ms (median)`,
    );
    expect(refusedMs).toBeLessThan(hashMs);
  });

  test("bounded hashing: a flood beyond PASSWORD_HASH_CONCURRENCY + PASSWORD_HASH_QUEUE is refused at once, other work goes on", async () => {
    const { app, tokens } = await appWith({
      PASSWORD_FAILURES_PER_USER: "0",
      PASSWORD_FAILURES_PER_ADDRESS: "0",
      PASSWORD_HASH_CONCURRENCY: "1",
      PASSWORD_HASH_QUEUE: "2",
    });
    const reader = clientFor(AuditService, app, "connect", tokens.reader);
    await reader.list({ pageSize: 1 });
    const flood = Array.from({ length: 40 }, (_, i) => attempt(login(app, `flood-${i}`, "guess")));
    // A token call while the flood is on: it needs no hash, and must not wait behind the guesses.
    const during = await attempt(() => reader.list({ pageSize: 1 }));
    const outcomes = await Promise.all(flood);
    const count = (reason: string) => outcomes.filter((o) => o.reason === reason).length;
    const checked = count("INVALID_PASSWORD");
    const busy = outcomes.filter((o) => o.reason === "PASSWORD_CHECKS_BUSY");
    expect(checked + busy.length).toBe(40);
    expect(checked).toBeGreaterThanOrEqual(3);
    expect(busy.length).toBeGreaterThan(0);
    expectAll(busy, (o) => o.code === Code.ResourceExhausted && (o.retryMs ?? 0) > 0, "busy");
    const slowestChecked = Math.max(...outcomes.filter((o) => o.reason === "INVALID_PASSWORD").map((o) => o.ms));
    const medianBusy = busy.map((o) => o.ms).sort((a, b) => a - b)[Math.floor(busy.length / 2)] as number;
    console.log(
      `password guard: 40 concurrent guesses, ${checked} hashed, ${busy.length} refused busy (median ${medianBusy.toFixed(0)} ms, slowest hashed ${slowestChecked.toFixed(0)} ms); a List meanwhile ${during.ms.toFixed(0)} ms`,
    );
    expect(during.code).toBe(0);
    expect(medianBusy).toBeLessThan(slowestChecked);
  });

  test("sessions per user are capped: a Login beyond SESSIONS_PER_USER revokes the oldest", async () => {
    const { app, admin } = await appWith({ SESSIONS_PER_USER: "3" });
    const { credential: user } = await admin.createUser({ username: "sam", password: PASSWORD, roles: [Role.READER] });
    const tokens: string[] = [];
    for (let i = 0; i < 5; i++) tokens.push((await login(app, "sam", PASSWORD)()).token);
    const results = await Promise.all(
      tokens.map((token) => attempt(() => clientFor(AuditService, app, "connect", token).list({ pageSize: 1 }))),
    );
    expect(results.map((r) => r.reason ?? "ok")).toEqual([
      "CREDENTIAL_REVOKED",
      "CREDENTIAL_REVOKED",
      "ok",
      "ok",
      "ok",
    ]);
    const sql = postgres(app.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      const [live] = await sql`
        select count(*)::int as n from credentials where user_id = ${user?.id ?? ""} and revoked_at is null`;
      expect(live?.n).toBe(3);
    } finally {
      await sql.end();
    }
  });
});
