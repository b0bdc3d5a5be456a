import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { getTableColumns } from "drizzle-orm";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import type { FieldViolation } from "../../src/errors.js";
import { readEvent } from "../../src/service/event-input.js";
import { inputRow, type NewEvent } from "../../src/store/event-store.js";
import { events } from "../../src/store/schema.js";

export type EventInit = MessageInitShape<typeof AuditEventSchema>;

const ACTIONS = ["project.create", "project.update", "device.delete", "user.login", "key.rotate", "rule.update"];
export const ACTORS = 200;

/** A typical event: actor, target, outcome, request and a few attributes, about 600 bytes as JSON. */
export function sampleEvent(i: number): EventInit {
  const actor = `user-${i % ACTORS}`;
  return {
    action: ACTIONS[i % ACTIONS.length],
    category: "Devices",
    source: "bench",
    actor: { id: actor, type: "user", name: `User ${actor}`, email: `${actor}@example.com`, roles: ["admin", "ops"] },
    target: { id: `device-${i % 5000}`, type: "device", name: `Device ${i % 5000}` },
    outcome: { status: 1, code: "200", message: "OK" },
    request: {
      ip: "10.1.2.3",
      method: "POST",
      url: `https://api.example.com/v1/devices/${i % 5000}`,
      userAgent: "bench/1.0",
      durationMs: 12.5,
      correlationId: `corr-${i}`,
    },
    attributes: { serialNumber: `SN-${i}`, firmware: "1.2.3", tags: ["a", "b"], retries: i % 3 },
  };
}

const DAY_MS = 86_400_000;
const REALISTIC_ACTIONS = [
  "project.update",
  "member.invite",
  "key.rotate",
  "user.login",
  "policy.change",
  "export.run",
];

/**
 * The event clients send (issue 16): every field set, a random hex target id, a client-set occurred_at spread over the
 * last 30 days, no id (the service assigns one), 3% failures with code and message, and nested attributes. About
 * 536 bytes in protobuf. `random` makes a run's events reproducible from a seed.
 */
export function realisticEvent(i: number, random: () => number = Math.random): EventInit {
  const hex = (bytes: number) =>
    Array.from({ length: bytes }, () =>
      Math.floor(random() * 256)
        .toString(16)
        .padStart(2, "0"),
    ).join("");
  const actor = `user-${i % ACTORS}`;
  const failed = random() < 0.03;
  const occurredMs = Date.now() - Math.floor(random() * 30 * DAY_MS);
  return {
    occurredAt: timestampFromMs(occurredMs),
    action: REALISTIC_ACTIONS[i % REALISTIC_ACTIONS.length],
    category: "projects",
    source: "console",
    actor: { id: actor, type: "user", name: `User ${actor}`, email: `${actor}@example.com`, roles: ["admin"] },
    target: { id: hex(12), type: "project", name: `Project ${i % 977}` },
    outcome: failed
      ? { status: 2, code: "PERMISSION_DENIED", message: "the caller lacks project.update on this project" }
      : { status: 1, code: "OK", message: "" },
    request: {
      ip: `10.${i % 256}.${(i >> 8) % 256}.${1 + (i % 250)}`,
      method: "PATCH",
      url: `https://console.example.com/api/v2/projects/${hex(6)}`,
      userAgent: "Mozilla/5.0 (X11; Linux x86_64) console/4.2.1",
      durationMs: Math.round(random() * 2500) / 10,
      correlationId: hex(16),
      sessionId: `sess-${hex(8)}`,
    },
    attributes: {
      changes: { field: "name", old: "alpha", new: "beta" },
      geo: { country: "DE", region: "r1" },
      client: { app: "console", version: "4.2.1" },
      tags: ["bench", "device"],
    },
  };
}

/** A seeded generator (mulberry32): the same events on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** The row the service would store for an event, as the store's NewEvent. */
export function newEventOf(init: EventInit, nowMicros = BigInt(Date.now()) * 1000n): NewEvent {
  const violations: FieldViolation[] = [];
  const event = readEvent(create(AuditEventSchema, init), "", nowMicros, violations);
  if (!event) throw new Error(`bench fixture is invalid: ${JSON.stringify(violations)}`);
  return event;
}

/** The row the service would store for sampleEvent(i), as the store's NewEvent. */
export function sampleNewEvent(i: number, nowMicros: bigint): NewEvent {
  return newEventOf(sampleEvent(i), nowMicros);
}

/** Each events column's schema key and SQL name. */
const COLUMN_NAMES = Object.entries(getTableColumns(events)).map(([key, column]) => [key, column.name] as const);

/**
 * A complete events row (column name to value) for raw INSERTs, the baseline the service is compared with: the row
 * the store's own append statement would insert (its inputRow), with a sequence, and with json and bytea columns in
 * the forms a plain INSERT or COPY takes.
 */
export function rawRow(tenant: string, sequence: number, template: NewEvent, occurredMicros: bigint) {
  const row = inputRow({ tenant, event: { ...template, id: "" } }, 0, occurredMicros);
  const values: Record<string, unknown> = {
    ...row,
    sequence,
    request: JSON.stringify(row.request),
    attributes: JSON.stringify(row.attributes),
    contentHash: template.contentHash,
  };
  return Object.fromEntries(COLUMN_NAMES.map(([key, name]) => [name, values[key]]));
}

export type RawRow = ReturnType<typeof rawRow>;
export const RAW_COLUMNS = COLUMN_NAMES.map(([, name]) => name);

/** One line of COPY ... FROM STDIN text format. */
export function copyLine(row: RawRow): string {
  return `${RAW_COLUMNS.map((column) => copyField(row[column])).join("\t")}\n`;
}

function copyField(value: unknown): string {
  if (value === null || value === undefined) return "\\N";
  if (Buffer.isBuffer(value)) return `\\\\x${value.toString("hex")}`;
  if (Array.isArray(value))
    return copyText(`{${value.map((v) => `"${String(v).replace(/["\\]/g, "\\$&")}"`).join(",")}}`);
  return copyText(String(value));
}

function copyText(text: string): string {
  return text.replace(/[\\\t\n\r]/g, (c) => ({ "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" })[c] as string);
}
