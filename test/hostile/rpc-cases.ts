import { brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import {
  create,
  type DescMethod,
  type JsonObject,
  type JsonValue,
  toBinary,
  toJson,
  toJsonString,
} from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import { AdminService } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { Role } from "../../src/auth/principal.js";
import { requiredRoles } from "../../src/interceptors/auth.js";
import { documented } from "../support/documented-errors.js";
import type { Channel, Expectation, HostileCase, Outcome, Target } from "./harness.js";
import { hostileCase } from "./harness.js";
import { type InvalidRequest, invalidRequests } from "./invalid-requests.js";
import { decodesJson, type JsonFault, jsonFaults } from "./json-faults.js";
import { malformed } from "./protobuf-faults.js";
import { connectOutcome, connectStreamOutcome, envelope, grpcOutcome, grpcWebOutcome, type H2Client } from "./wire.js";

/** Every RPC of both services, from their descriptors: a new RPC is fuzzed without a change here. */
export const allMethods: DescMethod[] = [...AuditService.methods, ...AdminService.methods];

/** The largest message the service reads (MAX_BODY_BYTES' default). */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** How a case's bytes travel: the envelope flags and declared length, extra headers, or no message at all. */
export interface Framing {
  flags?: number;
  declaredLength?: number;
  /** Bytes sent in place of the single envelope (truncated or repeated frames). */
  rawBody?: Uint8Array;
  headers?: Record<string, string>;
}

/** Sends one request message over one protocol and reads the outcome. */
export interface RpcSender {
  channel: Channel;
  /** Whether messages travel as protobuf binary (else JSON). */
  binary: boolean;
  /** Whether the protocol frames messages in envelopes (gRPC, gRPC-web; Connect only for streaming). */
  enveloped(method: DescMethod): boolean;
  send(
    method: DescMethod,
    payload: Uint8Array,
    token: string | undefined,
    framing: Framing,
    signal: AbortSignal,
  ): Promise<Outcome>;
}

const procedurePath = (m: DescMethod) => `/${m.parent.typeName}/${m.name}`;
const auth = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

function body(payload: Uint8Array, framing: Framing, enveloped: boolean): Uint8Array {
  if (framing.rawBody) return framing.rawBody;
  return enveloped ? envelope(framing.flags ?? 0, payload, framing.declaredLength) : payload;
}

export function grpcSender(h2: H2Client): RpcSender {
  return {
    channel: "grpc",
    binary: true,
    enveloped: () => true,
    async send(method, payload, token, framing, signal) {
      const headers = {
        ":method": "POST",
        ":path": procedurePath(method),
        "content-type": "application/grpc",
        te: "trailers",
        ...auth(token),
        ...framing.headers,
      };
      return grpcOutcome(await h2.request(headers, body(payload, framing, true), signal));
    },
  };
}

export function grpcWebSender(url: string): RpcSender {
  return {
    channel: "grpc-web",
    binary: true,
    enveloped: () => true,
    async send(method, payload, token, framing, signal) {
      const res = await fetch(url + procedurePath(method), {
        method: "POST",
        headers: {
          "content-type": "application/grpc-web+proto",
          "x-grpc-web": "1",
          ...auth(token),
          ...framing.headers,
        },
        body: body(payload, framing, true),
        signal,
      });
      return grpcWebOutcome(res);
    },
  };
}

/** Connect: unary calls post the bare message; server-streaming ones an envelope, as application/connect+proto. */
export function connectSender(url: string, binary: boolean): RpcSender {
  const streaming = (m: DescMethod) => m.methodKind === "server_streaming";
  return {
    channel: "connect",
    binary,
    enveloped: streaming,
    async send(method, payload, token, framing, signal) {
      const stream = streaming(method);
      const format = binary ? "proto" : "json";
      const res = await fetch(url + procedurePath(method), {
        method: "POST",
        headers: {
          "content-type": stream ? `application/connect+${format}` : `application/${format}`,
          "connect-protocol-version": "1",
          ...auth(token),
          ...framing.headers,
        },
        body: body(payload, framing, stream),
        signal,
      });
      return stream ? connectStreamOutcome(res) : connectOutcome(res);
    },
  };
}

/** The credential a fuzzed call carries: one its RPC accepts, so the fault, not the role, is what gets refused. */
export function tokenFor(target: Target, method: DescMethod): string {
  const role = requiredRoles.get(`${method.parent.typeName}/${method.name}`);
  return role === Role.SUPERADMIN ? target.app.adminToken : target.acme.admin;
}

/** A valid request for each RPC, the raw material of framing faults. */
function validPayload(method: DescMethod, binary: boolean): Uint8Array {
  const message = create(method.input, method.input.typeName === "audit.v1.ListRequest" ? { pageSize: 1 } : {});
  return binary ? toBinary(method.input, message) : Buffer.from(toJsonString(method.input, message));
}

/** Protobuf bytes that do not decode as the RPC's request, over the sender's protocol: MALFORMED_MESSAGE. */
export function malformedMessageCases(sender: RpcSender, target: Target): fc.Arbitrary<HostileCase> {
  return fc
    .constantFrom(...allMethods)
    .chain((method) => malformed(method.input).map((m) => ({ method, m })))
    .map(({ method, m }) =>
      hostileCase({
        channel: sender.channel,
        label: `${method.name}: ${m.label}`,
        expect: { codes: [Code.InvalidArgument], reason: "MALFORMED_MESSAGE", fields: [] },
        send: (signal) => sender.send(method, m.bytes, tokenFor(target, method), {}, signal),
      }),
    );
}

/** Decodable requests that break a rule of the RPC: the table's reason, its documented code, and the one field named. */
export function invalidRequestCases(sender: RpcSender, target: Target): fc.Arbitrary<HostileCase> {
  const tables = allMethods.map((method) => {
    const table = invalidRequests.get(method);
    if (!table) throw new Error(`no invalid requests for ${method.parent.typeName}/${method.name}: add them`);
    return table;
  });
  return fc
    .oneof(...tables)
    .filter((r) => sender.binary || jsonOf(r) !== undefined)
    .map((r) => {
      const payload = sender.binary ? toBinary(r.method.input, create(r.method.input, r.message)) : jsonOf(r);
      const token =
        r.caller === "none" ? undefined : r.caller === "superadmin" ? target.app.adminToken : target.acme.admin;
      return hostileCase({
        channel: sender.channel,
        label: `${r.method.name}: ${r.label}`,
        expect: {
          codes: [documented(r.reason).code],
          reason: r.reason,
          fields: r.field === undefined ? [] : [r.field],
        },
        send: (signal) => sender.send(r.method, payload as Uint8Array, token, {}, signal),
      });
    });
}

/** The proto-JSON bytes of a request, or undefined when JSON cannot express it (a Timestamp past year 9999). */
function jsonOf(r: InvalidRequest): Uint8Array | undefined {
  try {
    return Buffer.from(JSON.stringify(toJson(r.method.input, create(r.method.input, r.message)) as JsonValue));
  } catch {
    return undefined;
  }
}

/** Whether the bytes happen to be a valid stream of the encoding (brotli has no header, so junk sometimes is). */
function decompresses(encoding: string, bytes: Uint8Array): boolean {
  try {
    (encoding === "br" ? brotliDecompressSync : gunzipSync)(bytes);
    return true;
  } catch {
    return false;
  }
}

let gzipBomb: Uint8Array | undefined;
/** 64 MiB of zeros, gzipped to about 64 KiB: decompression must stop at the read limit. */
function bomb(): Uint8Array {
  gzipBomb ??= gzipSync(Buffer.alloc(64 * 1024 * 1024));
  return gzipBomb;
}

/**
 * Faults in the gRPC or gRPC-web envelope around a valid message: truncated frames, lengths past the end or past the
 * limit, wrong compression flags and encodings, a gzip bomb, no message or several, a malformed grpc-timeout.
 */
export function framingCases(sender: RpcSender, target: Target): fc.Arbitrary<HostileCase> {
  const kinds: fc.Arbitrary<{
    method: DescMethod;
    label: string;
    framing: Framing;
    payload?: Uint8Array;
    codes?: Code[];
    statuses?: number[];
  }>[] = [
    fc.record({ method: fc.constantFrom(...allMethods), cut: fc.nat() }).map(({ method, cut }) => {
      const full = envelope(0, validPayload(method, sender.binary));
      const at = 1 + (cut % (full.length - 1));
      return {
        method,
        label: `envelope cut to ${at} of ${full.length} bytes`,
        framing: { rawBody: full.subarray(0, at) },
      };
    }),
    fc
      .record({ method: fc.constantFrom(...allMethods), extra: fc.integer({ min: 1, max: MAX_BODY_BYTES - 64 }) })
      .map(({ method, extra }) => {
        const payload = validPayload(method, sender.binary);
        return {
          method,
          label: `declares ${extra} bytes more than it sends`,
          framing: { declaredLength: payload.length + extra },
          payload,
        };
      }),
    fc
      .record({
        method: fc.constantFrom(...allMethods),
        length: fc.integer({ min: MAX_BODY_BYTES + 1, max: 2 ** 32 - 1 }),
      })
      .map(({ method, length }) => ({
        method,
        label: `declares ${length} bytes, past the limit`,
        framing: { declaredLength: length },
        codes: [Code.ResourceExhausted],
      })),
    fc.constantFrom(...allMethods).map((method) => ({
      method,
      label: "compressed flag without grpc-encoding",
      framing: { flags: 1 },
    })),
    fc
      .record({ method: fc.constantFrom(...allMethods), junk: fc.uint8Array({ minLength: 1, maxLength: 64 }) })
      .map(({ method, junk }) => ({
        method,
        label: `gzip flag on ${junk.length} bytes that are not gzip`,
        framing: { flags: 1, headers: { "grpc-encoding": "gzip" } },
        payload: junk,
      })),
    fc.constantFrom(...allMethods).map((method) => ({
      method,
      label: "gzip bomb (64 MiB of zeros)",
      framing: { flags: 1, headers: { "grpc-encoding": "gzip" } },
      payload: bomb(),
      codes: [Code.ResourceExhausted],
    })),
    fc
      .record({ method: fc.constantFrom(...allMethods), flags: fc.integer({ min: 2, max: 255 }) })
      .map(({ method, flags }) => ({ method, label: `envelope flags 0x${flags.toString(16)}`, framing: { flags } })),
    fc
      .record({
        method: fc.constantFrom(...allMethods),
        encoding: fc.constantFrom("zstd", "snappy", "deflate", "x-unknown", "gzip;q=1"),
      })
      .map(({ method, encoding }) => ({
        method,
        label: `grpc-encoding ${encoding}`,
        framing: { flags: 1, headers: { "grpc-encoding": encoding } },
        codes: [Code.Unimplemented],
      })),
    fc
      .constantFrom(...allMethods)
      .map((method) => ({ method, label: "no message", framing: { rawBody: new Uint8Array(0) } })),
    fc.record({ method: fc.constantFrom(...allMethods), n: fc.integer({ min: 2, max: 50 }) }).map(({ method, n }) => {
      const one = envelope(0, validPayload(method, sender.binary));
      return {
        method,
        label: `${n} messages for a unary call`,
        framing: { rawBody: Buffer.concat(Array(n).fill(one)) },
      };
    }),
    fc
      .record({
        method: fc.constantFrom(...allMethods),
        timeout: fc.constantFrom("abc", "1000000000S", "-1S", "1x", "", "10"),
      })
      .map(({ method, timeout }) => ({
        method,
        label: `grpc-timeout ${JSON.stringify(timeout)}`,
        framing: { headers: { "grpc-timeout": timeout } },
      })),
  ];
  return fc.oneof(...kinds).map((k) =>
    hostileCase({
      channel: sender.channel,
      label: `${k.method.name}: ${k.label}`,
      expect: k.statuses ? { statuses: k.statuses } : { codes: k.codes ?? [Code.InvalidArgument] },
      send: (signal) =>
        sender.send(
          k.method,
          k.payload ?? validPayload(k.method, sender.binary),
          tokenFor(target, k.method),
          k.framing,
          signal,
        ),
    }),
  );
}

/** A valid proto-JSON request per RPC, for JSON faults to break; RPCs not listed start from `{}`. */
const jsonBases = new Map<DescMethod, JsonObject>([
  [AuditService.method.create, { event: { action: "hostile.json", actor: { id: "u1" }, attributes: { k: "v" } } }],
  [AuditService.method.batchCreate, { events: [{ action: "hostile.json" }] }],
  [AuditService.method.list, { pageSize: 1, actions: ["a"], outcome: "OUTCOME_STATUS_SUCCESS" }],
  [AuditService.method.tail, { filter: { actorId: "u1" }, afterSequence: "0" }],
  [
    AuditService.method.publish,
    { eventName: "hostile.tpl", attributes: [{ name: "count", value: "1" }], ttlMinutes: "5" },
  ],
  [AdminService.method.createTenant, { tenant: { id: "newtenant", displayName: "New" } }],
  [AdminService.method.createApiKey, { name: "k", roles: ["ROLE_READER"], expireTime: "2100-01-01T00:00:00Z" }],
  [AdminService.method.createUser, { username: "u", password: "long enough", roles: ["ROLE_READER"] }],
  [AdminService.method.login, { tenant: "acme", username: "u", password: "long enough", rememberMe: true }],
  [
    AdminService.method.createEventTemplate,
    { template: { name: "t.json", attributes: [{ name: "a", type: "ATTRIBUTE_TYPE_STRING" }] } },
  ],
]);

/** The documented answer to a JSON request that does not decode (docs/errors.md, on requests it cannot read). */
const CONNECT_JSON_FAULTS: Record<JsonFault["kind"], string> = {
  "not-json": "MALFORMED_MESSAGE",
  "not-object": "MALFORMED_MESSAGE",
  "unknown-field": "UNKNOWN_FIELD",
  "wrong-value": "INVALID_FIELD",
};

/** Proto-JSON bodies that do not decode as the RPC's request (over Connect with JSON): the reason of their fault. */
export function jsonFaultCases(sender: RpcSender, target: Target): fc.Arbitrary<HostileCase> {
  return fc
    .constantFrom(...allMethods)
    .chain((method) => jsonFaults(method.input, jsonBases.get(method) ?? {}).map((f) => ({ method, f })))
    .map(({ method, f }) =>
      hostileCase({
        channel: sender.channel,
        label: `${method.name}: ${f.label}`,
        expect: {
          codes: [Code.InvalidArgument],
          reason: CONNECT_JSON_FAULTS[f.kind],
          fields: f.name === undefined ? [] : [f.name],
        },
        send: (signal) => sender.send(method, f.bytes, tokenFor(target, method), {}, signal),
      }),
    );
}

/**
 * Faults of the Connect protocol itself: corrupt or unknown Content-Encoding, a malformed connect-timeout-ms, media
 * types and methods it does not serve, and GET requests with a broken or missing message.
 */
export function connectProtocolCases(url: string, target: Target): fc.Arbitrary<HostileCase> {
  const unary = allMethods.filter((m) => m.methodKind === "unary");
  const gettable = allMethods.filter(
    (m) => m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS && m.methodKind === "unary",
  );
  type Fault = { method: DescMethod; label: string; init: RequestInit; query?: string; expect: Expectation };
  const post = (headers: Record<string, string>, body: Uint8Array): RequestInit => ({
    method: "POST",
    headers: { "content-type": "application/proto", "connect-protocol-version": "1", ...headers },
    body,
  });
  const kinds: fc.Arbitrary<Fault>[] = [
    fc
      .record({
        method: fc.constantFrom(...unary),
        junk: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        encoding: fc.constantFrom("gzip", "br"),
      })
      .filter(({ junk, encoding }) => !decompresses(encoding, junk))
      .map(({ method, junk, encoding }) => ({
        method,
        label: `Content-Encoding ${encoding} on ${junk.length} bytes that are not`,
        init: post({ "content-encoding": encoding }, junk),
        expect: { codes: [Code.InvalidArgument] },
      })),
    fc.constantFrom(...unary).map((method) => ({
      method,
      label: "Content-Encoding gzip bomb (64 MiB of zeros)",
      init: post({ "content-encoding": "gzip" }, bomb()),
      expect: { codes: [Code.ResourceExhausted] },
    })),
    fc
      .record({
        method: fc.constantFrom(...unary),
        extra: fc.integer({ min: 1, max: 64 * 1024 }),
        chunked: fc.boolean(),
      })
      .map(({ method, extra, chunked }) => {
        const bytes = Buffer.alloc(MAX_BODY_BYTES + extra, 0x20);
        // A stream without Content-Length is refused as it arrives, not after buffering it all.
        const body = chunked ? new Blob([bytes]).stream() : bytes;
        return {
          method,
          label: `a ${bytes.length}-byte body${chunked ? " streamed without a length" : ""}`,
          init: { ...post({}, new Uint8Array(0)), body, duplex: "half" } as RequestInit,
          expect: { codes: [Code.ResourceExhausted] },
        };
      }),
    fc
      .record({ method: fc.constantFrom(...unary), encoding: fc.constantFrom("zstd", "compress", "x-bogus") })
      .map(({ method, encoding }) => ({
        method,
        label: `Content-Encoding ${encoding}`,
        init: post({ "content-encoding": encoding }, new Uint8Array(0)),
        expect: { codes: [Code.Unimplemented] },
      })),
    fc
      .record({ method: fc.constantFrom(...unary), timeout: fc.constantFrom("abc", "-1", "1.5", "99999999999", "") })
      .map(({ method, timeout }) => ({
        method,
        label: `connect-timeout-ms ${JSON.stringify(timeout)}`,
        init: post({ "connect-timeout-ms": timeout }, validPayload(method, true)),
        expect: { codes: [Code.InvalidArgument] },
      })),
    fc
      .record({
        method: fc.constantFrom(...unary),
        type: fc.constantFrom(
          "application/xml",
          "text/plain",
          "application/x-www-form-urlencoded",
          "application/proto+json",
          "multipart/form-data; boundary=x",
        ),
      })
      .map(({ method, type }) => ({
        method,
        label: `Content-Type ${type}`,
        init: post({ "content-type": type }, validPayload(method, true)),
        expect: { statuses: [415] },
      })),
    fc
      .record({ method: fc.constantFrom(...unary), verb: fc.constantFrom("PUT", "DELETE", "PATCH") })
      .map(({ method, verb }) => ({
        method,
        label: `${verb} on an RPC path`,
        init: { ...post({}, validPayload(method, true)), method: verb },
        expect: { statuses: [405] },
      })),
    fc
      .record({ method: fc.constantFrom(...gettable), message: fc.string({ maxLength: 40 }) })
      .filter(({ method, message }) => !decodesJson(method.input, Buffer.from(message)))
      .map(({ method, message }) => ({
        method,
        label: `GET with JSON message ${JSON.stringify(message)}`,
        init: { method: "GET" },
        query: `connect=v1&encoding=json&message=${encodeURIComponent(message)}`,
        expect: { codes: [Code.InvalidArgument] },
      })),
    fc
      .constantFrom(...gettable)
      .chain((method) => malformed(method.input).map((m) => ({ method, m })))
      .map(({ method, m }) => ({
        method,
        label: `GET with protobuf message: ${m.label}`,
        init: { method: "GET" },
        query: `connect=v1&encoding=proto&base64=1&message=${Buffer.from(m.bytes).toString("base64url")}`,
        expect: { codes: [Code.InvalidArgument] },
      })),
    fc
      .record({ method: fc.constantFrom(...gettable), encoding: fc.constantFrom("xml", "", "PROTO", "json;q=1") })
      .map(({ method, encoding }) => ({
        method,
        label: `GET with encoding ${JSON.stringify(encoding)}`,
        init: { method: "GET" },
        query: `connect=v1&encoding=${encodeURIComponent(encoding)}&message=%7B%7D`,
        expect: { statuses: [415] },
      })),
  ];
  return fc.oneof(...kinds).map((k) =>
    hostileCase({
      channel: "connect",
      label: `${k.method.name}: ${k.label}`,
      expect: k.expect,
      send: async (signal) => {
        const headers = new Headers(k.init.headers);
        headers.set("authorization", `Bearer ${tokenFor(target, k.method)}`);
        const res = await fetch(`${url}${procedurePath(k.method)}${k.query ? `?${k.query}` : ""}`, {
          ...k.init,
          headers,
          signal,
        });
        return connectOutcome(res);
      },
    }),
  );
}
