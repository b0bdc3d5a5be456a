import { once } from "node:events";
import http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, expect, test } from "vitest";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { loadConfig } from "../../src/config.js";
import { clientFor } from "../support/clients.js";
import { appFixture } from "../support/fixture.js";
import {
  endOf,
  read,
  TailEnded,
  type TailOpener,
  type TailProtocol,
  type TailStream,
  tailClients,
} from "./tail-clients.js";

// Small caps, so a test can reach them: two streams per credential, three in all.
const PER_CREDENTIAL = 2;
const TOTAL = 3;
const H2_STREAMS = 50;

const clients: ReturnType<typeof tailClients>[] = [];

const given = appFixture({
  env: {
    TAIL_STREAMS_PER_CREDENTIAL: String(PER_CREDENTIAL),
    TAIL_STREAMS_TOTAL: String(TOTAL),
    HTTP2_MAX_CONCURRENT_STREAMS: String(H2_STREAMS),
  },
  tenants: ["acme"],
});
beforeAll(async () => {
  // One stored event, so that a stream which delivers it is known to be open on the server.
  await clientFor(AuditService, given.app, "connect", given.acme.writer).create({ event: { action: "stream.limit" } });
});
afterAll(async () => {
  for (const c of clients) c.close();
});

function tails(token: string) {
  const c = tailClients(given.app, token);
  clients.push(c);
  return c;
}

/** A stream that has delivered the stored event, so the server counts it. */
async function held(open: TailOpener): Promise<TailStream> {
  const stream = open({ afterSequence: 0n });
  await read(stream, 1);
  return stream;
}

/** Opens streams until one is served: closed streams free their slots once the server sees them go. */
async function heldOnceFree(open: TailOpener): Promise<TailStream> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await held(open);
    } catch (error) {
      if (!(error instanceof TailEnded) || error.end.reason !== "TAIL_STREAM_LIMIT" || attempt > 100) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const protocols: TailProtocol[] = ["connect", "connect-binary", "grpc-web", "grpc", "grpc-js"];

test.each(protocols)(
  "a credential's stream past TAIL_STREAMS_PER_CREDENTIAL is RESOURCE_EXHAUSTED over %s",
  async (protocol) => {
    const reader = tails(given.acme.reader);
    const open = [await heldOnceFree(reader.connect), await heldOnceFree(reader.connect)];
    const end = await endOf(() => reader[protocol]({ afterSequence: 0n }).next());
    expect(end).toMatchObject({
      code: Code.ResourceExhausted,
      reason: "TAIL_STREAM_LIMIT",
      metadata: { scope: "credential", limit: String(PER_CREDENTIAL) },
    });
    // Another credential is not affected.
    const other = await heldOnceFree(tails(given.acme.readerWriter).connect);
    for (const s of [...open, other]) s.close();
  },
);

test.each([
  ["NDJSON", "application/x-ndjson"],
  ["SSE", "text/event-stream"],
])("over REST (%s) the stream past the cap is a 429 google.rpc.Status", async (_name, accept) => {
  const reader = tails(given.acme.reader);
  const open = [await heldOnceFree(reader.connect), await heldOnceFree(reader.connect)];
  const res = await fetch(`${given.app.url}/v1/tenants/acme/events:tail?afterSequence=0`, {
    headers: { authorization: `Bearer ${given.acme.reader}`, accept },
  });
  const body = await res.json();
  expect(res.status).toBe(429);
  expect(body).toMatchObject({
    code: Code.ResourceExhausted,
    details: [{ reason: "TAIL_STREAM_LIMIT", metadata: { scope: "credential", limit: String(PER_CREDENTIAL) } }],
  });
  for (const s of open) s.close();
});

test("a stream past TAIL_STREAMS_TOTAL is refused whoever asks, and closed streams free their slots", async () => {
  const open = [
    await heldOnceFree(tails(given.acme.reader).connect),
    await heldOnceFree(tails(given.acme.reader).grpc),
    await heldOnceFree(tails(given.acme.readerWriter)["grpc-js"]),
  ];
  const end = await endOf(() => tails(given.acme.admin)["grpc-web"]({ afterSequence: 0n }).next());
  expect(end).toMatchObject({
    code: Code.ResourceExhausted,
    reason: "TAIL_STREAM_LIMIT",
    metadata: { scope: "server", limit: String(TOTAL) },
  });
  for (const s of open) s.close();
  // Every slot comes back: three new streams are served again.
  const again = [
    await heldOnceFree(tails(given.acme.admin).connect),
    await heldOnceFree(tails(given.acme.admin).grpc),
    await heldOnceFree(tails(given.acme.reader)["grpc-js"]),
  ];
  for (const s of again) s.close();
});

test("the HTTP/2 server announces HTTP2_MAX_CONCURRENT_STREAMS", async () => {
  const session = http2.connect(given.app.url);
  try {
    const [settings] = (await once(session, "remoteSettings")) as [http2.Settings];
    expect(settings.maxConcurrentStreams).toBe(H2_STREAMS);
  } finally {
    session.close();
  }
});

test("the stream limits are validated, with bounded defaults", () => {
  const config = loadConfig({});
  expect(config.tailStreamsPerCredential).toBe(16);
  expect(config.tailStreamsTotal).toBe(1000);
  expect(config.http2MaxConcurrentStreams).toBe(256);
  for (const [name, value] of [
    ["TAIL_STREAMS_PER_CREDENTIAL", "0"],
    ["TAIL_STREAMS_TOTAL", "-1"],
    ["HTTP2_MAX_CONCURRENT_STREAMS", "many"],
    ["LEGACY_LIST_MAX_BYTES", "1000"],
  ] as const) {
    expect(() => loadConfig({ [name]: value }), name).toThrow(name);
  }
});
