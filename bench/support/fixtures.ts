import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import type { FieldViolation } from "../../src/errors.js";
import { readEvent } from "../../src/service/event-input.js";
import { inputRow, type NewEvent } from "../../src/store/event-store.js";

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

/** The row the service would store for sampleEvent(i), as the store's NewEvent. */
export function sampleNewEvent(i: number, nowMicros: bigint): NewEvent {
  const violations: FieldViolation[] = [];
  const event = readEvent(create(AuditEventSchema, sampleEvent(i)), "", nowMicros, violations);
  if (!event) throw new Error(`bench fixture is invalid: ${JSON.stringify(violations)}`);
  return event;
}

/**
 * A complete events row (column name to value) for raw INSERTs, the baseline the service is compared with: the row
 * the store's own append statement would insert (its inputRow), with a sequence, and with json and bytea columns in
 * the forms a plain INSERT or COPY takes.
 */
export function rawRow(tenant: string, sequence: number, template: NewEvent, occurredMicros: bigint) {
  const { ord: _, client_id: __, ...row } = inputRow({ tenant, event: { ...template, id: "" } }, 0, occurredMicros);
  return {
    ...row,
    sequence,
    request: JSON.stringify(row.request),
    attributes: JSON.stringify(row.attributes),
    content_hash: template.contentHash,
  };
}

export type RawRow = ReturnType<typeof rawRow>;
export const RAW_COLUMNS = Object.keys(rawRow("t", 1, sampleNewEvent(0, 0n), 0n)) as (keyof RawRow)[];

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
