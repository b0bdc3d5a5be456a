import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type Code, ConnectError, createClient } from "@connectrpc/connect";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { type AuditEvent, AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { transportFor } from "../support/clients.js";
import { seededRandom } from "../support/random.js";

/** A tenant and a writer key for it. */
export interface Writer {
  tenant: string;
  token: string;
}

/** One Create or BatchCreate call and what became of it. */
export interface Attempt {
  kind: "create" | "batch";
  tenant: string;
  events: AuditEvent[];
  /** "pending" until the call answers; a call cut off by a crash or shutdown ends "failed". */
  outcome: "pending" | "acked" | "failed";
  /** The stored sequences the server answered with, in request order. */
  sequences?: number[];
  code?: Code;
  message?: string;
  /** performance.now() when the call was made and when it answered. */
  startedAt?: number;
  endedAt?: number;
}

let counter = 0;

/** Distinct, fully specified events (client ids, fixed occurred_at), so a retry sends byte-identical content. */
export function newEvents(prefix: string, count: number): AuditEvent[] {
  return Array.from({ length: count }, () => {
    counter += 1;
    return create(AuditEventSchema, {
      id: `${prefix}-${process.pid}-${counter}`,
      occurredAt: timestampFromMs(Date.now()),
      action: "reliability.write",
      category: "reliability",
      actor: { id: `user-${counter % 17}`, type: "user", name: "Load Generator" },
      target: { id: `doc-${counter % 101}`, type: "document" },
      outcome: { status: OutcomeStatus.SUCCESS },
      attributes: { n: counter, tag: prefix },
    });
  });
}

/** Sends one attempt over `url` by gRPC and records its outcome on it. */
export async function send(url: string, token: string, attempt: Attempt, timeoutMs = 15_000): Promise<void> {
  const client = createClient(AuditService, transportFor({ url }, "grpc", token));
  await sendWith(client, attempt, timeoutMs);
}

type AuditClient = ReturnType<typeof createClient<typeof AuditService>>;

async function sendWith(client: AuditClient, attempt: Attempt, timeoutMs: number): Promise<void> {
  attempt.startedAt = performance.now();
  try {
    const stored =
      attempt.kind === "create"
        ? [(await client.create({ tenant: attempt.tenant, event: attempt.events[0] }, { timeoutMs })).event]
        : (await client.batchCreate({ tenant: attempt.tenant, events: attempt.events }, { timeoutMs })).events;
    attempt.sequences = stored.map((e) => Number(e?.sequence ?? 0));
    attempt.outcome = "acked";
  } catch (error) {
    const e = ConnectError.from(error);
    attempt.code = e.code;
    attempt.message = e.rawMessage;
    attempt.outcome = "failed";
  } finally {
    attempt.endedAt = performance.now();
  }
}

export interface LoadOptions {
  url: string;
  writers: Writer[];
  /** Concurrent callers, each with its own HTTP/2 connection. */
  workers: number;
  /** Events in a BatchCreate: 2 up to this. Half the calls are Create, half BatchCreate. */
  maxBatch: number;
  /** Prefix of every event id this load writes. */
  prefix: string;
  /** Callers stop starting calls once this is aborted. */
  signal: AbortSignal;
  /** Picks each call's kind and size (seeded, so that a failing run can be repeated with TEST_SEED). */
  random?: () => number;
  /** Callers also stop after a failed call (the service went away). Default true; otherwise they back off 20 ms. */
  stopOnFailure?: boolean;
  /** Where each attempt is recorded as it starts, for a test that watches the load while it runs. */
  attempts?: Attempt[];
}

/** Concurrent Create and BatchCreate over gRPC until `signal` aborts; resolves with every attempt once all answered. */
export async function runLoad(options: LoadOptions): Promise<Attempt[]> {
  const attempts = options.attempts ?? [];
  const random = options.random ?? seededRandom();
  const worker = async (w: number) => {
    const writer = options.writers[w % options.writers.length] as Writer;
    const client = createClient(AuditService, transportFor({ url: options.url }, "grpc", writer.token));
    while (!options.signal.aborted) {
      const batch = random() < 0.5;
      const size = batch ? 2 + Math.floor(random() * (options.maxBatch - 1)) : 1;
      const attempt: Attempt = {
        kind: batch ? "batch" : "create",
        tenant: writer.tenant,
        events: newEvents(options.prefix, size),
        outcome: "pending",
      };
      attempts.push(attempt);
      await sendWith(client, attempt, 15_000);
      if (attempt.outcome !== "failed") continue;
      if (options.stopOnFailure !== false) return;
      await sleep(20);
    }
  };
  await Promise.all(Array.from({ length: options.workers }, (_, w) => worker(w)));
  return attempts;
}

/** Counts of a load's attempts, for the summary lines. */
export function tally(attempts: Attempt[]) {
  const events = (outcome: Attempt["outcome"]) =>
    attempts.filter((a) => a.outcome === outcome).reduce((n, a) => n + a.events.length, 0);
  return {
    calls: attempts.length,
    ackedCalls: attempts.filter((a) => a.outcome === "acked").length,
    failedCalls: attempts.filter((a) => a.outcome === "failed").length,
    ackedEvents: events("acked"),
    unackedEvents: events("failed") + events("pending"),
  };
}
