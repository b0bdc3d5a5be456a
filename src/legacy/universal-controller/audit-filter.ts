import { fromJson, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import type { ListRequestSchema } from "../../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../../gen/audit/v1/event_pb.js";
import { microsToTimestamp, timestampMicros } from "../../store/time.js";
import type { XmlValue } from "../xml.js";
import { isObject, unknownField, xmlText } from "./publish-input.js";
import { invalid, type UcReply } from "./responses.js";

/** An `<audit-filter>` as List filters, plus what List cannot filter on itself. */
export interface AuditFilter {
  list: MessageInitShape<typeof ListRequestSchema>;
  /** target.name must equal this; List has no such filter, so the adapter checks it on each page. */
  tableRecordName: string | undefined;
  includeChildAudits: boolean;
}

const FIELDS = [
  "auditType",
  "updatedTimeType",
  "updatedTime",
  "status",
  "createdBy",
  "tableRecordName",
  "tableName",
  "tableKey",
  "source",
  "includeChildAudits",
] as const;
type Field = (typeof FIELDS)[number];

/**
 * Universal Controller's audit types, by number. A number in auditType stands for the name; every auditType is then
 * matched against the event's action.
 */
const AUDIT_TYPES = [
  "Create",
  "Update",
  "Delete",
  "Command",
  "Server Operation",
  "CLI",
  "Restore Version",
  "Delete Version",
  "User Login",
  "z/OS Auto-Restart",
  "Delete Override File",
];

const UNITS: Record<string, bigint> = { d: 86_400_000_000n, h: 3_600_000_000n, mn: 60_000_000n };

/** The filter fields of a JSON body: each a string (numbers and booleans as their text), null as absent. */
export function jsonFilterFields(body: JsonValue): Map<string, string> | UcReply {
  if (!isObject(body)) return invalid("request", "The body must be a JSON object of filter fields");
  const fields = new Map<string, string>();
  for (const [rawKey, value] of Object.entries(body)) {
    // Some published examples of this API put spaces inside the keys (" createdBy "); clients copied them.
    const key = rawKey.trim();
    if (value === null) continue;
    if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
      fields.set(key, String(value));
    } else {
      return invalid(key, "Value must be a string");
    }
  }
  return fields;
}

/** The filter fields of an `<audit-filter>` document: each child element's text. */
export function xmlFilterFields(root: string, value: XmlValue): Map<string, string> | UcReply {
  if (root !== "audit-filter") return invalid("request", `The root element must be <audit-filter>, not <${root}>`);
  const fields = new Map<string, string>();
  if (typeof value === "string") return fields;
  for (const [key, child] of Object.entries(value)) {
    if (key.startsWith("@")) return unknownField(key.slice(1));
    const text = Array.isArray(child) ? undefined : xmlText(child);
    if (text === undefined) return invalid(key, "Value must be text, given once");
    fields.set(key, text);
  }
  return fields;
}

/** Checks every filter value and turns the whole into List filters; the first bad value is named. */
export function readAuditFilter(fields: Map<string, string>, nowMicros: bigint): AuditFilter | UcReply {
  for (const key of fields.keys()) if (!(FIELDS as readonly string[]).includes(key)) return unknownField(key);
  const get = (field: Field) => {
    const value = fields.get(field)?.trim() ?? "";
    return value === "" ? undefined : value;
  };
  const list: AuditFilter["list"] = {};

  const auditType = get("auditType");
  if (auditType !== undefined && auditType !== "*") {
    const actions = auditTypeActions(auditType);
    if (!Array.isArray(actions)) return actions;
    list.actions = actions;
  }

  const time = updatedTime(get("updatedTimeType"), get("updatedTime"), nowMicros);
  if (!Array.isArray(time)) return time;
  [list.startTime, list.endTime] = time;

  const status = get("status")?.toLowerCase();
  if (status !== undefined && status !== "*") {
    if (status === "success") list.outcome = OutcomeStatus.SUCCESS;
    else if (status === "failure" || status === "failed") list.outcome = OutcomeStatus.FAILURE;
    else return invalid("status", "Value must be *, Success or Failure");
  }

  const include = get("includeChildAudits")?.toLowerCase();
  if (include !== undefined && !["true", "false", "1", "0"].includes(include)) {
    return invalid("includeChildAudits", "Value must be true, false, 1 or 0");
  }

  list.actorName = get("createdBy");
  list.targetType = get("tableName");
  list.targetId = get("tableKey");
  list.source = get("source");
  return { list, tableRecordName: get("tableRecordName"), includeChildAudits: include === "true" || include === "1" };
}

/**
 * The actions an auditType selects. Universal Controller matches audit types without regard to case; List matches
 * actions exactly, so the value is tried as written, in lower case, in upper case and in title case ("user login",
 * "USER LOGIN", "User Login"), which covers how the other routes spell their actions.
 */
function auditTypeActions(value: string): string[] | UcReply {
  let name = value;
  if (/^[0-9]+$/.test(value)) {
    const known = AUDIT_TYPES[Number(value) - 1];
    if (known === undefined)
      return invalid("auditType", `Value ${value} is not an audit type number (1-${AUDIT_TYPES.length})`);
    name = known;
  }
  const title = name
    .toLowerCase()
    .replace(/(^|[\s/_.-])(\p{L})/gu, (_m, sep: string, ch: string) => sep + ch.toUpperCase());
  return [...new Set([name, name.toLowerCase(), name.toUpperCase(), title])];
}

/**
 * The occurred_at window of updatedTimeType/updatedTime. `offset` takes a period back from now (-10d, -6h, -30mn; a
 * bare number is days); `since` and `older than` take an absolute time or such a period.
 */
function updatedTime(
  type: string | undefined,
  value: string | undefined,
  nowMicros: bigint,
): [Timestamp | undefined, Timestamp | undefined] | UcReply {
  const kind = type?.toLowerCase().replace(/[\s_-]/g, "") ?? (value === undefined ? undefined : "offset");
  if (kind === undefined) return [undefined, undefined];
  if (kind !== "offset" && kind !== "since" && kind !== "olderthan") {
    return invalid("updatedTimeType", "Value must be Offset, Since or Older Than");
  }
  if (value === undefined)
    return invalid("updatedTime", `Value is required when updatedTimeType is ${type ?? "offset"}`);
  let micros = offsetMicros(value, nowMicros);
  if (micros === undefined && kind !== "offset") micros = absoluteMicros(value);
  if (micros === undefined) {
    return invalid(
      "updatedTime",
      kind === "offset"
        ? "Value must be a period back from now such as -10d, -6h or -30mn"
        : 'Value must be a period such as -10d or a time such as "2024-05-01 12:00:00" (UTC) or 2024-05-01T12:00:00Z',
    );
  }
  // Before the epoch nothing was recorded, so an older bound is no bound.
  const at = micros < 0n ? undefined : microsToTimestamp(micros);
  return kind === "olderthan" ? [undefined, at ?? microsToTimestamp(0n)] : [at, undefined];
}

function offsetMicros(value: string, nowMicros: bigint): bigint | undefined {
  const m = /^-?([0-9]{1,9})(d|h|mn)?$/i.exec(value);
  if (!m) return undefined;
  const unit = UNITS[(m[2] ?? "d").toLowerCase()] ?? 0n;
  return nowMicros - BigInt(m[1] ?? "0") * unit;
}

/** RFC 3339, or `YYYY-MM-DD HH:MM:SS` in UTC, or the `2020-03-04 13:33:09 -0500` form the listing writes. */
function absoluteMicros(value: string): bigint | undefined {
  const m =
    /^([0-9]{4}-[0-9]{2}-[0-9]{2})[ Tt]([0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?) ?(Z|z|[+-][0-9]{2}:?[0-9]{2})?$/.exec(
      value,
    );
  if (!m) return undefined;
  const zone = m[3] === undefined ? "Z" : m[3].length === 5 ? `${m[3].slice(0, 3)}:${m[3].slice(3)}` : m[3];
  try {
    return timestampMicros(fromJson(TimestampSchema, `${m[1]}T${m[2]}${zone.toUpperCase()}`));
  } catch {
    return undefined;
  }
}
