import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import type { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";

export type EventInit = MessageInitShape<typeof AuditEventSchema>;

export const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** What varies between uses: the wire encoder wants any value a message can hold, the content hash valid ones. */
export interface EventValues {
  text: fc.Arbitrary<string>;
  int64: fc.Arbitrary<bigint>;
  timestamp: fc.Arbitrary<{ seconds: bigint; nanos: number }>;
  double: fc.Arbitrary<number>;
  outcomeStatus: fc.Arbitrary<number>;
  rolesMax: number;
  attributesDepth: number;
}

/** Generated AuditEvents with every field, each optional message present or not. */
export function auditEvents(v: EventValues): fc.Arbitrary<EventInit> {
  const timestamp = optional(v.timestamp);
  const { text } = v;
  return fc.record({
    id: text,
    tenant: text,
    sequence: v.int64,
    occurredAt: timestamp,
    receivedAt: timestamp,
    completedAt: timestamp,
    expiresAt: timestamp,
    source: text,
    action: text,
    category: text,
    actor: optional(
      fc.record({ id: text, type: text, name: text, email: text, roles: fc.array(text, { maxLength: v.rolesMax }) }),
    ),
    target: optional(fc.record({ id: text, type: text, name: text })),
    outcome: optional(fc.record({ status: v.outcomeStatus, code: text, message: text })),
    request: optional(
      fc.record({
        ip: text,
        method: text,
        url: text,
        userAgent: text,
        durationMs: v.double,
        correlationId: text,
        sessionId: text,
      }),
    ),
    // Struct values as protobuf-es holds them: JSON objects (a Value cannot hold undefined).
    attributes: optional(
      fc.dictionary(text, fc.jsonValue({ maxDepth: v.attributesDepth }), { maxKeys: 8 }) as fc.Arbitrary<JsonObject>,
    ),
    parentId: text,
  });
}
