import { EventSource } from "eventsource";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startTestApp, type TestApp } from "../support/app.js";
import { provisionTenant, type TenantTokens } from "../support/clients.js";
import { ManualClock } from "../support/clock.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";

// Tail as Server-Sent Events for a browser's EventSource (issue 14, item 12): every event carries its sequence as
// `id:`, a reconnect with Last-Event-ID resumes with no gap and no duplicate, and a short-lived single-use ticket
// authenticates a stream without an Authorization header. The client is the `eventsource` package, a WHATWG
// EventSource: it keeps the last id and reconnects with Last-Event-ID on its own.
let database: TestDatabase;
let app: TestApp;
let acme: TenantTokens;
beforeAll(async () => {
  database = await createTestDatabase();
  app = await startTestApp({ database });
  acme = await provisionTenant(app, "acme");
  await provisionTenant(app, "globex");
});
afterAll(async () => {
  await app?.close();
  await database?.drop();
});

const tailPath = (query = "afterSequence=0") => `/v1/tenants/acme/events:tail?${query}`;

async function write(action: string, target = app): Promise<string> {
  const res = await fetch(`${target.url}/v1/tenants/acme/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${acme.writer}`, "content-type": "application/json" },
    body: JSON.stringify({ action }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { event: { sequence: string } }).event.sequence;
}

async function ticket(tenant = "acme", token = acme.reader): Promise<{ status: number; ticket: string }> {
  const res = await fetch(`${app.url}/v1/tenants/${tenant}/streamTickets`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
  });
  const json = (await res.json()) as { ticket: string; expireTime: string };
  if (res.status === 200) {
    const life = Date.parse(json.expireTime) - Date.now();
    expect(life).toBeGreaterThan(50_000);
    expect(life).toBeLessThanOrEqual(60_000);
  }
  return { status: res.status, ticket: json.ticket };
}

/** Collects an EventSource's messages; `until(n)` resolves once n have arrived. */
function collect(source: EventSource) {
  const received: { id: string; sequence: string; action: string }[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  let opens = 0;
  source.addEventListener("open", () => opens++);
  source.addEventListener("message", (e) => {
    const { event } = JSON.parse(e.data) as { event: { sequence: string; action: string } };
    received.push({ id: e.lastEventId, sequence: event.sequence, action: event.action });
    for (const w of waiters.filter((w) => received.length >= w.n)) w.resolve();
  });
  return {
    received,
    opens: () => opens,
    until: (n: number) =>
      new Promise<void>((resolve) => (received.length >= n ? resolve() : waiters.push({ n, resolve }))),
  };
}

/** The raw SSE text of a stream, read with fetch until `count` events arrived. */
async function rawEvents(url: string, headers: Record<string, string>, count: number) {
  const abort = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: abort.signal });
  if (res.status !== 200 || !res.body) return { status: res.status, text: await res.text() };
  if (count === 0) {
    abort.abort();
    return { status: res.status, text: "" };
  }
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of res.body) {
    text += decoder.decode(chunk as Uint8Array, { stream: true });
    if (text.split("\n\n").filter((e) => e.includes("data:")).length >= count) break;
  }
  abort.abort();
  return { status: res.status, text };
}

describe("ids and Last-Event-ID", () => {
  test("each SSE event carries its sequence as id:", async () => {
    const first = await write("sse.id");
    const second = await write("sse.id");
    const { text } = await rawEvents(
      `${app.url}${tailPath(`afterSequence=${Number(first) - 1}&filter.actions=sse.id`)}`,
      { authorization: `Bearer ${acme.reader}` },
      2,
    );
    expect(text).toMatch(new RegExp(`^id: ${first}\ndata: \\{.*"sequence":"${first}".*\\}\n\nid: ${second}\ndata: `));
  });

  test("Last-Event-ID resumes after that event, over the URL's afterSequence", async () => {
    const a = await write("sse.resume");
    const b = await write("sse.resume");
    const c = await write("sse.resume");
    const { text } = await rawEvents(
      `${app.url}${tailPath("afterSequence=0&filter.actions=sse.resume")}`,
      { authorization: `Bearer ${acme.reader}`, "last-event-id": a },
      2,
    );
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => m[1]);
    expect(ids).toEqual([b, c]);
    const bad = await rawEvents(
      `${app.url}${tailPath()}`,
      { authorization: `Bearer ${acme.reader}`, "last-event-id": "x1" },
      1,
    );
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).details[0].reason).toBe("INVALID_HEADER");
  });
});

test("an EventSource reconnecting after the server restarts resumes with no gap and no duplicate", async () => {
  const port = app.port;
  const before = [await write("sse.restart"), await write("sse.restart")];
  // A header-authenticated EventSource (its fetch adds Authorization), as a non-browser client would use.
  const source = new EventSource(`${app.url}${tailPath("afterSequence=0&filter.actions=sse.restart")}`, {
    fetch: (input, init) =>
      fetch(input, { ...init, headers: { ...init?.headers, authorization: `Bearer ${acme.reader}` } }),
  });
  try {
    const seen = collect(source);
    await seen.until(2);
    // The server goes away mid-stream and comes back on the same port; events are written while the client waits.
    await app.close();
    app = await startTestApp({ database, env: { PORT: String(port), AUDIT_ADMIN_TOKEN: app.adminToken } });
    const after = [await write("sse.restart"), await write("sse.restart"), await write("sse.restart")];
    await seen.until(5);
    expect(seen.opens()).toBe(2);
    const all = [...before, ...after];
    expect(seen.received.map((r) => r.sequence)).toEqual(all);
    expect(seen.received.map((r) => r.id)).toEqual(all);
  } finally {
    source.close();
  }
});

describe("stream tickets", () => {
  test("a browser's EventSource authenticates with ?ticket= and no header", async () => {
    const sequence = await write("sse.ticket");
    const { status, ticket: t } = await ticket();
    expect(status).toBe(200);
    expect(t).toMatch(/^st_[A-Za-z0-9_-]{43}$/);
    const source = new EventSource(
      `${app.url}${tailPath(`ticket=${t}&afterSequence=${Number(sequence) - 1}&filter.actions=sse.ticket`)}`,
    );
    try {
      const seen = collect(source);
      await seen.until(1);
      expect(seen.received[0]).toEqual({ id: sequence, sequence, action: "sse.ticket" });
    } finally {
      source.close();
    }
  });

  test("a ticket is single use, for its tenant, on the SSE route only, and never with a header", async () => {
    const sse = (query: string, headers: Record<string, string> = {}) =>
      rawEvents(`${app.url}/v1/tenants/acme/events:tail?${query}`, headers, 0);
    const reason = (r: { text: string }) => JSON.parse(r.text).details[0].reason;

    const once = (await ticket()).ticket;
    // Headers come with the first event (an error before it gets a real status), so replay one.
    const first = await rawEvents(`${app.url}${tailPath(`ticket=${once}&afterSequence=0`)}`, {}, 0);
    expect(first.status).toBe(200);
    const again = await sse(`ticket=${once}`);
    expect([again.status, reason(again)]).toEqual([401, "INVALID_STREAM_TICKET"]);

    const forged = await sse("ticket=st_not-a-ticket");
    expect([forged.status, reason(forged)]).toEqual([401, "INVALID_STREAM_TICKET"]);

    // Bound to the tenant it was issued for: a superadmin's ticket for globex does not open acme's stream.
    const globex = (await ticket("globex", app.adminToken)).ticket;
    const other = await sse(`ticket=${globex}`);
    expect([other.status, reason(other)]).toEqual([403, "TENANT_MISMATCH"]);

    const both = await sse(`ticket=${(await ticket()).ticket}`, { authorization: `Bearer ${acme.reader}` });
    expect([both.status, reason(both)]).toEqual([401, "MALFORMED_AUTHORIZATION"]);

    // Not a credential anywhere else: NDJSON Tail and List are refused as anonymous (authentication comes before the
    // query is read), and with a credential the ticket is the unknown query parameter it is there.
    const t = (await ticket()).ticket;
    const ndjson = await fetch(`${app.url}${tailPath(`ticket=${t}`)}`);
    expect([ndjson.status, reason({ text: await ndjson.text() })]).toEqual([401, "MISSING_CREDENTIAL"]);
    const list = await fetch(`${app.url}/v1/tenants/acme/events?ticket=${t}`, {
      headers: { accept: "text/event-stream" },
    });
    expect([list.status, reason({ text: await list.text() })]).toEqual([401, "MISSING_CREDENTIAL"]);
    const withKey = await fetch(`${app.url}/v1/tenants/acme/events?ticket=${t}`, {
      headers: { accept: "text/event-stream", authorization: `Bearer ${acme.reader}` },
    });
    expect(withKey.status).toBe(400);

    // A writer-only key cannot get a ticket: it needs Tail's reader role.
    expect((await ticket("acme", acme.writer)).status).toBe(403);
  });
});

test("a ticket expires 60 s after it was issued", async () => {
  const clock = new ManualClock();
  const timed = await startTestApp({ clock });
  try {
    const { reader, writer } = await provisionTenant(timed, "acme");
    await fetch(`${timed.url}/v1/tenants/acme/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${writer}`, "content-type": "application/json" },
      body: JSON.stringify({ action: "sse.expiry" }),
    });
    const issue = async () => {
      const res = await fetch(`${timed.url}/v1/tenants/acme/streamTickets`, {
        method: "POST",
        headers: { authorization: `Bearer ${reader}` },
      });
      return ((await res.json()) as { ticket: string }).ticket;
    };
    const open = (t: string) =>
      fetch(`${timed.url}${tailPath(`ticket=${t}&afterSequence=0`)}`, { headers: { accept: "text/event-stream" } });
    const late = await issue();
    clock.advanceHours(61 / 3600);
    const refused = await open(late);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { details: { reason: string }[] }).details[0]?.reason).toBe(
      "INVALID_STREAM_TICKET",
    );
    const fresh = await issue();
    clock.advanceHours(59 / 3600);
    const opened = await open(fresh);
    expect(opened.status).toBe(200);
    await opened.body?.cancel();
  } finally {
    await timed.close();
  }
});

test("a Tail stream's start and end are in the request log, with the events it sent and why it ended", async () => {
  await write("sse.log");
  const { text } = await rawEvents(
    `${app.url}${tailPath("afterSequence=0&filter.actions=sse.log")}`,
    { authorization: `Bearer ${acme.reader}`, "x-request-id": "tail-log-1" },
    1,
  );
  expect(text).toContain("sse.log");
  const lines = () => app.logs.map((l) => JSON.parse(l)).filter((l) => l.requestId === "tail-log-1");
  await expect.poll(() => lines().map((l) => l.msg)).toEqual(["stream started", "call"]);
  expect(lines()[1]).toMatchObject({ procedure: "Tail", code: "Canceled", messages: 1, reason: "CANCELED" });
});
