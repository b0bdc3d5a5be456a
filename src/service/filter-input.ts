import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import type { FieldViolation } from "../errors.js";
import type { EventFilter } from "../store/event-filter.js";
import { isStorableText } from "../store/text.js";
import { timestampToIso } from "../store/time.js";
import { limits } from "./limits.js";

/** The filter fields ListRequest and EventFilter (Tail) have in common, under the same names. */
export interface FilterFields {
  startTime?: Timestamp;
  endTime?: Timestamp;
  actions: string[];
  actorId: string;
  actorName: string;
  targetId: string;
  targetType: string;
  category: string;
  source: string;
  outcome: OutcomeStatus;
  parentId: string;
  includeChildren: boolean;
  activeOnly: boolean;
  eventName: string;
  includeServiceRecords: boolean;
}

/** Checks the filters of a List or Tail request, reporting each bad field under `prefix` (`""`, `filter.`). */
export function readFilter(f: FilterFields, prefix: string, violations: FieldViolation[]): EventFilter {
  const bad = (field: string, description: string) => violations.push({ field: prefix + field, description });
  const time = (field: string, ts: Timestamp | undefined) => {
    if (!ts) return undefined;
    if (ts.nanos < 0 || ts.nanos > 999_999_999 || ts.seconds < -62135596800n || ts.seconds > 253402300799n) {
      bad(field, "must be a valid timestamp between 0001-01-01 and 9999-12-31");
      return undefined;
    }
    return timestampToIso(ts);
  };
  const startTime = time("start_time", f.startTime);
  const endTime = time("end_time", f.endTime);
  if (startTime && endTime && endTime <= startTime) bad("end_time", "must be after start_time");
  if (f.actions.length > limits.listActions) bad("actions", `must have at most ${limits.listActions} entries`);
  f.actions.forEach((action, i) => {
    const field = `actions[${i}]`;
    if (action === "" || action === "*") bad(field, "must be an action or a prefix followed by *");
    else if (action.length > limits.shortText) bad(field, `must be at most ${limits.shortText} characters`);
    else if (action.indexOf("*") !== -1 && action.indexOf("*") !== action.length - 1)
      bad(field, "may hold * only at the end");
    else if (!isStorableText(action)) bad(field, "must be valid UTF-8 text without NUL characters");
  });
  const texts = {
    actor_id: f.actorId,
    actor_name: f.actorName,
    target_id: f.targetId,
    target_type: f.targetType,
    category: f.category,
    source: f.source,
    parent_id: f.parentId,
    event_name: f.eventName,
  };
  for (const [field, value] of Object.entries(texts)) {
    if (value.length > limits.longText) bad(field, `must be at most ${limits.longText} characters`);
    else if (!isStorableText(value)) bad(field, "must be valid UTF-8 text without NUL characters");
  }
  if (!(f.outcome in OutcomeStatus)) bad("outcome", `unknown value ${f.outcome}`);
  return {
    startTime,
    endTime,
    actions: f.actions,
    actorId: f.actorId,
    actorName: f.actorName,
    targetId: f.targetId,
    targetType: f.targetType,
    category: f.category,
    source: f.source,
    outcomeStatus: f.outcome,
    parentId: f.parentId,
    includeChildren: f.includeChildren,
    activeOnly: f.activeOnly,
    eventName: f.eventName,
    includeServiceRecords: f.includeServiceRecords,
  };
}
