import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import type { FieldViolation } from "../../src/errors.js";
import { readEvent } from "../../src/service/event-input.js";
import type { EventFilter } from "../../src/store/event-filter.js";
import type { NewEvent } from "../../src/store/event-store.js";

export const NOW_MICROS = 1_790_000_000_000_000n;

/** A NewEvent made the way the handlers make one, content hash included. */
export function newEvent(init: MessageInitShape<typeof AuditEventSchema>): NewEvent {
  const violations: FieldViolation[] = [];
  const event = readEvent(create(AuditEventSchema, init), "event.", NOW_MICROS, violations);
  if (!event) throw new Error(`invalid test event: ${JSON.stringify(violations)}`);
  return event;
}

/** A filter that selects every event, children included: tests spread over it only what they vary. */
export const everyEvent: EventFilter = {
  actions: [],
  actorId: "",
  actorName: "",
  targetId: "",
  targetType: "",
  category: "",
  source: "",
  outcomeStatus: 0,
  parentId: "",
  includeChildren: true,
  activeOnly: false,
  eventName: "",
};
