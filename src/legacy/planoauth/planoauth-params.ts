import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { AuditEventSchema } from "../../../gen/audit/v1/event_pb.js";
import { parseDateTime } from "../../service/date-time.js";

/** Every status string this route answers with, and its HTTP status. */
export const STATUS_HTTP = {
  "action-successful": 200,
  "invalid-token": 401,
  "session-expired": 401,
  "client-required": 401,
  "missing-param": 400,
  "invalid-param": 400,
  "invalid-content-type": 400,
  "no-params-decoded": 400,
  "invalid-encoded-params": 400,
  "application-crash": 500,
  "route-non-existent": 500,
} as const;
export type PlanoStatus = keyof typeof STATUS_HTTP;

/** A response other than success, before rendering. */
export class Problem {
  constructor(
    readonly status: PlanoStatus,
    readonly message: string,
    /** When not the status's usual HTTP code. */
    readonly http: number = STATUS_HTTP[status],
    readonly data: JsonObject = {},
  ) {}
}

export const APPLICATIONS = ["planoauth", "planoorder", "planox2"] as const;

/** The documented parameters, in the document's order: the first missing or invalid one is the one reported. */
const REQUIRED = ["unique_id", "script_name", "host_name", "file_name", "start_time"] as const;
const OPTIONAL_TEXT = ["stop_time", "updated_in", "application_view", "application", "session_view"] as const;
const KNOWN = new Set<string>([...REQUIRED, ...OPTIONAL_TEXT, "notes", "token"]);

type AuditEventInit = MessageInitShape<typeof AuditEventSchema>;

/**
 * The body's parameters: a JSON object, or base64 of one (how PlanoAuth's "sensitive params" routes send them),
 * either raw or as a JSON string.
 */
export function decodeParams(body: Buffer): Record<string, unknown> | Problem {
  const text = utf8(body)?.trim();
  if (text === undefined) return encodingProblem("the request body is not UTF-8 text");
  if (text === "") return new Problem("no-params-decoded", "the request body is empty");
  let value = parseJson(text);
  if (typeof value === "string" || value === undefined) {
    const decoded = fromBase64(typeof value === "string" ? value : text);
    if (decoded === undefined) return encodingProblem("the request body is neither a JSON object nor base64 of one");
    value = parseJson(decoded);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return encodingProblem("the request body is neither a JSON object nor base64 of one");
  }
  if (Object.keys(value).length === 0) return new Problem("no-params-decoded", "the request body has no params");
  return value as Record<string, unknown>;
}

/** The event a valid set of parameters describes; the token and the views are not part of it. */
export function readRecord(
  params: Record<string, unknown>,
  actor: { type: string; name: string },
): AuditEventInit | Problem {
  for (const name of Object.keys(params)) {
    if (!KNOWN.has(name)) return invalid(`${name} is not a parameter of this route`);
  }
  for (const name of REQUIRED) {
    const value = params[name];
    if (value === undefined || value === null || value === "") return missing(name);
    if (typeof value !== "string") return invalid(`${name} must be a string`);
  }
  for (const name of OPTIONAL_TEXT) {
    const value = params[name];
    if (value !== undefined && value !== null && typeof value !== "string") return invalid(`${name} must be a string`);
  }
  const text = (name: string) => (typeof params[name] === "string" && params[name] !== "" ? params[name] : undefined);
  const notes = params.notes;
  if (notes !== undefined && notes !== null) {
    if (!Array.isArray(notes)) return invalid("notes must be an array of strings");
    const bad = notes.findIndex((n) => typeof n !== "string");
    if (bad !== -1) return invalid(`notes[${bad}] must be a string`);
  }
  const application = text("application");
  if (application !== undefined && !(APPLICATIONS as readonly string[]).includes(application)) {
    return invalid(`application must be one of ${APPLICATIONS.join(", ")}`);
  }
  const start = parseDateTime(params.start_time as string);
  if (!start) return invalid(TIME_FORMAT("start_time"));
  const stopText = text("stop_time");
  const stop = stopText === undefined ? undefined : parseDateTime(stopText);
  if (stopText !== undefined && !stop) return invalid(TIME_FORMAT("stop_time"));

  const attributes: JsonObject = { script_name: params.script_name as string };
  if (Array.isArray(notes)) attributes.notes = notes as string[];
  const updatedIn = text("updated_in");
  if (updatedIn !== undefined) attributes.updated_in = updatedIn;
  if (application !== undefined) attributes.application = application;
  return {
    id: params.unique_id as string,
    action: "audit_events_fmp.create",
    source: params.host_name as string,
    target: { type: "file", name: params.file_name as string },
    actor,
    occurredAt: start,
    completedAt: stop,
    attributes,
  };
}

const TIME_FORMAT = (name: string) =>
  `${name} must be an RFC 3339 time (2024-05-01T10:00:00Z) or YYYY-MM-DD HH:MM:SS in UTC`;

export function missing(name: string): Problem {
  return new Problem("missing-param", `missing required param: ${name}`);
}

export function invalid(message: string): Problem {
  return new Problem("invalid-param", message);
}

function encodingProblem(message: string): Problem {
  return new Problem("invalid-encoded-params", message);
}

function utf8(body: Buffer): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    return undefined;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Standard or URL-safe base64 (line breaks allowed) decoded to UTF-8 text. */
function fromBase64(text: string): string | undefined {
  const compact = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact) || compact.length % 4 === 1) return undefined;
  return utf8(Buffer.from(compact, "base64"));
}
