import { create, isMessage, type JsonObject } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { expect, test } from "vitest";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { rowToEvent } from "../../src/service/event-output.js";
import type { EventRow } from "../../src/store/event-store.js";
import { pgTimestampMicros } from "../../src/store/time.js";

const bare: EventRow = {
  tenant: "t",
  sequence: 7,
  id: "e1",
  occurredAt: "2026-11-22 03:50:00.123456+00",
  receivedAt: "2026-11-22T03:50:01.000001Z",
  completedAt: null,
  expiresAt: null,
  source: "",
  action: "a.b",
  category: "",
  actorId: "",
  actorType: "",
  actorName: "",
  actorEmail: "",
  actorRoles: [],
  targetId: "",
  targetType: "",
  targetName: "",
  outcomeStatus: 0,
  outcomeCode: "",
  outcomeMessage: "",
  request: null,
  attributes: null,
  parentId: "",
};

const timestamp = (text: string) => {
  const micros = pgTimestampMicros(text);
  return create(TimestampSchema, { seconds: micros / 1_000_000n, nanos: Number(micros % 1_000_000n) * 1000 });
};

/** The message as create() makes it from the row: what rowToEvent's plain objects must equal. */
function viaCreate(row: EventRow) {
  const actor = row.actorId || row.actorType || row.actorName || row.actorEmail || row.actorRoles.length > 0;
  return create(AuditEventSchema, {
    id: row.id,
    tenant: row.tenant,
    sequence: BigInt(row.sequence),
    occurredAt: timestamp(row.occurredAt),
    receivedAt: timestamp(row.receivedAt),
    completedAt: row.completedAt ? timestamp(row.completedAt) : undefined,
    expiresAt: row.expiresAt ? timestamp(row.expiresAt) : undefined,
    source: row.source,
    action: row.action,
    category: row.category,
    actor: actor
      ? { id: row.actorId, type: row.actorType, name: row.actorName, email: row.actorEmail, roles: row.actorRoles }
      : undefined,
    target:
      row.targetId || row.targetType || row.targetName
        ? { id: row.targetId, type: row.targetType, name: row.targetName }
        : undefined,
    outcome:
      row.outcomeStatus || row.outcomeCode || row.outcomeMessage
        ? { status: row.outcomeStatus, code: row.outcomeCode, message: row.outcomeMessage }
        : undefined,
    request: (row.request as object | null) ?? undefined,
    attributes: (row.attributes as JsonObject | null) ?? undefined,
    parentId: row.parentId,
  });
}

test.each([
  ["a bare row", bare],
  [
    "every part set",
    {
      ...bare,
      completedAt: "2026-11-22 03:50:02+00",
      expiresAt: "2026-12-22 03:50:02.5+00",
      source: "s",
      category: "c",
      actorId: "u",
      actorRoles: ["admin"],
      targetName: "n",
      outcomeStatus: 2,
      request: { ip: "10.0.0.1", durationMs: 1.5 },
      attributes: { k: [1, { x: null }] },
      parentId: "p",
    },
  ],
  [
    "only an outcome code, only roles, empty attributes",
    { ...bare, outcomeCode: "E1", actorRoles: ["r"], attributes: {} },
  ],
])("rowToEvent of %s is the message create() makes", (_, row) => {
  const event = rowToEvent(row);
  expect(isMessage(event, AuditEventSchema)).toBe(true);
  expect(event).toStrictEqual(viaCreate(row));
});
