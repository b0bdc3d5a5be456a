import { canonicalEvent } from "../codec/event-content.js";
import { rowToEvent } from "../service/event-output.js";
import type { EventRow } from "../store/event-store.js";

/**
 * An event's leaf data: the RFC 8785 (JCS) canonical JSON of its proto3 JSON form exactly as List returns it over
 * the Connect protocol — rowToEvent's message as toJson writes it with the options connect-es uses (lowerCamelCase
 * names, default values omitted, int64 as strings, enums by name, Timestamps in RFC 3339 UTC), keys sorted by UTF-16
 * code units, no whitespace; as text, which leafHash hashes as its UTF-8 bytes. Any client can rebuild it from a listed event (scripts/verify.ts does, with its
 * own code). The codec writes it from the descriptors' field tables, as it writes the content hash's text;
 * test/vlog/leaf.test.ts checks it against canonicalJson(toJson(...)).
 *
 * Service floor (it needs the contract's message), handed to the store's TreeLog as a function.
 */
export function eventLeafData(row: EventRow): string {
  return canonicalEvent(rowToEvent(row));
}
