import { toJson } from "@bufbuild/protobuf";
import { AuditEventSchema } from "../../gen/audit/v1/event_pb.js";
import { canonicalJson } from "../service/event-input.js";
import { rowToEvent } from "../service/event-output.js";
import type { EventRow } from "../store/event-store.js";

/**
 * An event's leaf data: the RFC 8785 (JCS) canonical JSON of its proto3 JSON form exactly as List returns it over
 * the Connect protocol — rowToEvent's message written by toJson with the defaults connect-es uses (lowerCamelCase
 * names, default values omitted, int64 as strings, Timestamps as RFC 3339 in UTC), keys sorted by UTF-16 code units,
 * no whitespace, as UTF-8. Any client can rebuild it from a listed event (scripts/verify.ts does, with its own code).
 *
 * Service floor (it needs the contract's message), handed to the store's TreeLog as a function.
 */
export function eventLeafData(row: EventRow): Uint8Array {
  return Buffer.from(canonicalJson(toJson(AuditEventSchema, rowToEvent(row))));
}
