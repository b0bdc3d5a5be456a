import { fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type * as grpc from "@grpc/grpc-js";
import {
  AuditService,
  BatchCreateRequestSchema,
  BatchCreateResponseSchema,
  CreateRequestSchema,
  CreateResponseSchema,
  ListRequestSchema,
  ListResponseSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { TestApp } from "./app.js";
import { clientFor } from "./clients.js";
import { failureOf, instanceOf } from "./errors.js";
import { type GrpcMessage, grpcErrorDetails, grpcJsClient } from "./grpc-js-client.js";

/**
 * The AuditService over each protocol with a real client: Connect JSON over HTTP/1.1, Connect binary over HTTP/2 and
 * gRPC-web over HTTP/1.1 through connect-node, and gRPC through @grpc/grpc-js with the .proto loaded at run time.
 * Requests and responses are proto3 JSON on every protocol, so one test body checks all four.
 */
export const apiProtocols = ["connect", "connect-binary", "grpc-web", "grpc-js"] as const;
export type ApiProtocol = (typeof apiProtocols)[number];

/** audit.v1.AuditEvent in proto3 JSON. */
export type EventJson = {
  id?: string;
  tenant?: string;
  sequence?: string;
  occurredAt?: string;
  receivedAt?: string;
  completedAt?: string;
  source?: string;
  action?: string;
  category?: string;
  actor?: { id?: string; type?: string; name?: string; email?: string; roles?: string[] };
  target?: { id?: string; type?: string; name?: string };
  /** An enum name, or a number (proto3 JSON allows both; unknown values can only be numbers). */
  outcome?: { status?: string | number; code?: string; message?: string };
  request?: {
    ip?: string;
    method?: string;
    url?: string;
    userAgent?: string;
    /** A number, or "NaN" / "Infinity" as proto3 JSON writes those. */
    durationMs?: number | string;
    correlationId?: string;
    sessionId?: string;
  };
  attributes?: JsonObject;
  parentId?: string;
  expiresAt?: string;
};

export type ListJson = {
  tenant?: string;
  pageSize?: number;
  pageToken?: string;
  startTime?: string;
  endTime?: string;
  actions?: string[];
  actorId?: string;
  actorName?: string;
  targetId?: string;
  targetType?: string;
  category?: string;
  source?: string;
  outcome?: string | number;
  parentId?: string;
  includeChildren?: boolean;
  order?: string | number;
  activeOnly?: boolean;
  eventName?: string;
  includeServiceRecords?: boolean;
};

export interface AuditApi {
  readonly protocol: ApiProtocol;
  create(request: { tenant?: string; event?: EventJson }): Promise<{ event: EventJson }>;
  batchCreate(request: { tenant?: string; events: EventJson[] }): Promise<{ events: EventJson[] }>;
  list(request: ListJson): Promise<{ events: EventJson[]; nextPageToken: string }>;
  close(): void;
}

/** A failed call, the same whatever the protocol. */
export class ApiError extends Error {
  constructor(
    readonly code: Code,
    message: string,
    readonly reason: string | undefined,
    readonly domain: string | undefined,
    readonly metadata: Record<string, string>,
    readonly violations: { field: string; description: string; reason: string }[],
  ) {
    super(`${Code[code]}: ${message}`);
  }
}

export function auditApi(app: TestApp, protocol: ApiProtocol, token: string): AuditApi {
  return protocol === "grpc-js" ? grpcJsApi(app, token) : connectApi(app, protocol, token);
}

/** The error a call failed with; fails the test if it succeeded. */
export function failure(call: Promise<unknown>): Promise<ApiError> {
  return failureOf(call, "the call to fail", instanceOf(ApiError));
}

function connectApi(app: TestApp, protocol: Exclude<ApiProtocol, "grpc-js">, token: string): AuditApi {
  const client = clientFor(AuditService, app, protocol, token);
  // Through JSON text, so fields left undefined are absent, as they would be on the wire.
  const json = (request: object) => JSON.parse(JSON.stringify(request)) as JsonValue;
  return {
    protocol,
    create: (request) =>
      connectCall(async () => {
        const res = await client.create(fromJson(CreateRequestSchema, json(request)));
        return toJson(CreateResponseSchema, res) as { event: EventJson };
      }),
    batchCreate: (request) =>
      connectCall(async () => {
        const res = await client.batchCreate(fromJson(BatchCreateRequestSchema, json(request)));
        return { events: [], ...(toJson(BatchCreateResponseSchema, res) as { events?: EventJson[] }) };
      }),
    list: (request) =>
      connectCall(async () => {
        const res = await client.list(fromJson(ListRequestSchema, json(request)));
        return { events: [], nextPageToken: "", ...(toJson(ListResponseSchema, res) as object) };
      }),
    close() {},
  };
}

/** The error a call through a generated Connect client failed with; fails the test if it succeeded. */
export function connectApiError(call: Promise<unknown>): Promise<ApiError> {
  return failure(connectCall(() => call));
}

async function connectCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    const info = e.findDetails(ErrorInfoSchema)[0];
    const violations = e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
    throw new ApiError(
      e.code,
      e.rawMessage,
      info?.reason,
      info?.domain,
      { ...info?.metadata },
      violations.map(({ field, description, reason }) => ({ field, description, reason })),
    );
  }
}

function grpcJsApi(app: TestApp, token: string): AuditApi {
  const client = grpcJsClient(app.url, token);
  const call = async (method: string, request: GrpcMessage) => {
    try {
      return await client.unary("AuditService", method, request);
    } catch (e) {
      const error = e as grpc.ServiceError;
      if (typeof error?.code !== "number") throw e;
      const { errorInfo, badRequest } = grpcErrorDetails(error);
      throw new ApiError(
        error.code as number as Code,
        error.details,
        errorInfo?.reason,
        errorInfo?.domain,
        { ...errorInfo?.metadata },
        (badRequest?.fieldViolations ?? []).map(({ field, description, reason }) => ({ field, description, reason })),
      );
    }
  };
  return {
    protocol: "grpc-js",
    async create({ event, ...rest }) {
      const res = await call("Create", { ...rest, event: event && eventToGrpc(event) });
      return { event: eventFromGrpc(res.event) };
    },
    async batchCreate({ events, ...rest }) {
      const res = await call("BatchCreate", { ...rest, events: events.map(eventToGrpc) });
      return { events: (res.events ?? []).map(eventFromGrpc) };
    },
    async list({ startTime, endTime, ...rest }) {
      const res = await call("List", {
        ...rest,
        startTime: startTime === undefined ? undefined : timestampToGrpc(startTime),
        endTime: endTime === undefined ? undefined : timestampToGrpc(endTime),
      });
      return { events: (res.events ?? []).map(eventFromGrpc), nextPageToken: res.nextPageToken ?? "" };
    },
    close: () => client.close(),
  };
}

// proto-loader leaves Timestamp and Struct as plain messages; proto3 JSON gives them special forms.
const timestampFields = ["occurredAt", "receivedAt", "completedAt", "expiresAt"] as const;

function eventToGrpc(event: EventJson): GrpcMessage {
  const out: GrpcMessage = { ...event };
  for (const field of timestampFields) {
    const value = event[field];
    if (value !== undefined) out[field] = timestampToGrpc(value);
  }
  if (event.attributes) out.attributes = structToGrpc(event.attributes);
  if (typeof event.request?.durationMs === "string") {
    out.request = { ...event.request, durationMs: Number(event.request.durationMs) };
  }
  return out;
}

function eventFromGrpc(event: GrpcMessage): EventJson {
  const out: GrpcMessage = { ...event };
  for (const field of timestampFields) if (event[field]) out[field] = timestampFromGrpc(event[field]);
  if (event.attributes) out.attributes = structFromGrpc(event.attributes);
  return out as EventJson;
}

/** RFC 3339 to google.protobuf.Timestamp, nanoseconds intact. */
export function timestampToGrpc(text: string): { seconds: string; nanos: number } {
  const match = /^(.{19})(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  const ms = match ? Date.parse(`${match[1]}${match[3]}`) : Number.NaN;
  if (!match || Number.isNaN(ms)) throw new Error(`not an RFC 3339 timestamp: ${text}`);
  return { seconds: String(ms / 1000), nanos: Number((match[2] ?? "").padEnd(9, "0")) };
}

/** google.protobuf.Timestamp to RFC 3339 with 0, 3, 6 or 9 fraction digits, as proto3 JSON writes it. */
function timestampFromGrpc(ts: { seconds?: string; nanos?: number }): string {
  const base = new Date(Number(ts.seconds ?? 0) * 1000).toISOString().slice(0, 19);
  const nanos = ts.nanos ?? 0;
  if (nanos === 0) return `${base}Z`;
  let fraction = String(nanos).padStart(9, "0");
  if (fraction.endsWith("000000")) fraction = fraction.slice(0, 3);
  else if (fraction.endsWith("000")) fraction = fraction.slice(0, 6);
  return `${base}.${fraction}Z`;
}

function structToGrpc(object: JsonObject): GrpcMessage {
  return { fields: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, valueToGrpc(v)])) };
}

function valueToGrpc(value: JsonValue): GrpcMessage {
  if (value === null) return { nullValue: "NULL_VALUE" };
  if (typeof value === "number") return { numberValue: value };
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(valueToGrpc) } };
  return { structValue: structToGrpc(value) };
}

function structFromGrpc(struct: GrpcMessage): JsonObject {
  return Object.fromEntries(Object.entries(struct.fields ?? {}).map(([k, v]) => [k, valueFromGrpc(v as GrpcMessage)]));
}

function valueFromGrpc(value: GrpcMessage): JsonValue {
  switch (value.kind) {
    case "numberValue":
    case "stringValue":
    case "boolValue":
      return value[value.kind];
    case "listValue":
      return ((value.listValue.values ?? []) as GrpcMessage[]).map(valueFromGrpc);
    case "structValue":
      return structFromGrpc(value.structValue);
    default:
      return null;
  }
}

/** An RFC 3339 timestamp as microseconds since the epoch, for ordering and arithmetic. */
export function micros(text: string): bigint {
  const { seconds, nanos } = timestampToGrpc(text);
  return BigInt(seconds) * 1_000_000n + BigInt(Math.floor(nanos / 1000));
}
