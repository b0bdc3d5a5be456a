import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { CredentialKind, type GetCallerResponse } from "../../../gen/audit/v1/admin_service_pb.js";
import type { AuditEvent } from "../../../gen/audit/v1/event_pb.js";
import { Reason } from "../../errors.js";
import { timestampToIso } from "../../store/time.js";
import type { LegacyAdapter, LegacyDeps } from "../adapter.js";
import { bearer, type LegacyResponse, mediaType, readBody, send } from "../http.js";
import { legacyDescription, legacyField, type RpcFailure, rpcFailure } from "../rpc-failure.js";
import { decodeParams, type PlanoStatus, type Problem, readRecord, STATUS_HTTP } from "./planoauth-params.js";

const ROUTE = "/api/v1/audit_events_fmp/create";

/** Core field paths in this API's parameter names. */
const PARAM_NAMES = {
  "event.id": "unique_id",
  "event.occurred_at": "start_time",
  "event.completed_at": "stop_time",
  "event.source": "host_name",
  "event.target.name": "file_name",
  "event.attributes": "script_name, notes, updated_in",
  "event.actor": "token",
  tenant: "token",
};

/** A token is printable ASCII; anything else cannot be one and must not reach a header. */
const TOKEN = /^[\x21-\x7e]{1,4096}$/;

type Session = JsonObject;

/** PlanoAuth "Audit Events FMP Create": `POST /api/v1/audit_events_fmp/create`, token in the body. */
export function planoAuthAdapter(deps: LegacyDeps): LegacyAdapter {
  const { clients } = deps;

  async function serve(req: Parameters<LegacyAdapter["handle"]>[0], url: URL): Promise<Problem | Success> {
    if (url.pathname !== ROUTE || req.method !== "POST") {
      return { status: "route-non-existent", message: `route ${req.method} ${url.pathname} does not exist` };
    }
    const type = mediaType(req);
    if (type !== "application/json" && !type.endsWith("+json")) {
      return { status: "invalid-content-type", message: "the request must be sent as Content-Type: application/json" };
    }
    const body = await readBody(req, deps.maxBodyBytes);
    if (typeof body === "string") {
      return {
        status: "invalid-encoded-params",
        message:
          body === "too-large"
            ? `the request body exceeds ${deps.maxBodyBytes} bytes`
            : "the request body was not received in full",
      };
    }
    const params = decodeParams(body);
    if (isProblem(params)) return params;

    const token = params.token;
    if (token === undefined || token === null || token === "") {
      return { status: "missing-param", message: "missing required param: token" };
    }
    if (typeof token !== "string") return { status: "invalid-param", message: "token must be a string" };
    if (!TOKEN.test(token)) return { status: "invalid-token", message: "the token is not valid" };
    const headers = bearer(token);

    let caller: GetCallerResponse;
    try {
      caller = await clients.admin.getCaller({}, { headers });
    } catch (error) {
      return fromRpc(rpcFailure(error), undefined);
    }
    const credential = caller.credential;
    const session = credential?.kind === CredentialKind.SESSION ? sessionObject(caller, token) : undefined;
    if (!credential || !caller.tenant) {
      return {
        status: "invalid-token",
        message: "a global credential belongs to no tenant; use a tenant's API key or session",
      };
    }
    // PlanoAuth's "client-required": the credential is valid but carries no role at all.
    if (credential.roles.length === 0) return clientRequired(session);

    const record = readRecord(params, {
      type: credential.kind === CredentialKind.API_KEY ? "api_key" : "user",
      name: credential.name,
    });
    if (isProblem(record)) return record;
    try {
      const { event } = await clients.audit.create({ event: record }, { headers });
      if (!event) throw new Error("Create answered without an event");
      return { event, session };
    } catch (error) {
      return fromRpc(rpcFailure(error), session);
    }
  }

  return {
    name: "planoauth",
    owns: (path) => path === "/api" || path.startsWith("/api/"),
    async handle(req, res, url) {
      let outcome: Problem | Success;
      try {
        outcome = await serve(req, url);
      } catch (error) {
        deps.logger.error({ err: error, adapter: "planoauth" }, "PlanoAuth request failed");
        outcome = { status: "application-crash", message: "internal error; please try again later" };
      }
      if (isProblem(outcome)) {
        reply(res, outcome.http ?? STATUS_HTTP[outcome.status], outcome.status, outcome.message, outcome.data ?? {});
      } else {
        reply(res, 200, "action-successful", "audit_events_fmp record created", success(outcome));
      }
    },
  };
}

interface Success {
  event: AuditEvent;
  session: Session | undefined;
}

function isProblem(value: unknown): value is Problem {
  return typeof value === "object" && value !== null && "status" in value && "message" in value;
}

function clientRequired(session: Session | undefined): Problem {
  return {
    status: "client-required",
    message: "the credential has no role; register as a client first",
    data: session ? { session } : {},
  };
}

/** The status for a failed RPC, chosen from its code and reason. */
function fromRpc(failure: RpcFailure, session: Session | undefined): Problem {
  switch (failure.code) {
    case Code.Unauthenticated:
      return {
        status: failure.reason === Reason.SessionExpired ? "session-expired" : "invalid-token",
        message: failure.message,
      };
    case Code.PermissionDenied:
      if (failure.reason === Reason.NoRole) return clientRequired(session);
      return { status: "invalid-token", message: failure.message };
    case Code.InvalidArgument: {
      const v = failure.violations[0];
      if (!v) return { status: "invalid-param", message: failure.message };
      const param = legacyField(v.field, PARAM_NAMES);
      return {
        status: v.reason === Reason.MissingField ? "missing-param" : "invalid-param",
        message: `${param}: ${legacyDescription(v.description, PARAM_NAMES)}`,
      };
    }
    case Code.AlreadyExists:
      return { status: "invalid-param", message: "unique_id was already used for a record with different content" };
    case Code.ResourceExhausted:
      return { status: "application-crash", message: failure.message, http: 429 };
    default:
      return { status: "application-crash", message: failure.message };
  }
}

/** The stored record as this API shows it: `id` is the event's sequence in the tenant, `unique_id` its id. */
function success({ event, session }: Success): JsonObject {
  const attributes = event.attributes ?? {};
  const received = iso(event.receivedAt);
  const record: JsonObject = {
    id: Number(event.sequence),
    unique_id: event.id,
    script_name: attributes.script_name ?? null,
    host_name: event.source,
    file_name: event.target?.name ?? "",
    start_time: iso(event.occurredAt),
    stop_time: iso(event.completedAt),
    notes: attributes.notes ?? null,
    updated_in: attributes.updated_in ?? null,
    application: attributes.application ?? null,
    created_at: received,
    updated_at: received,
  };
  return session ? { audit_events_fmp: record, session } : { audit_events_fmp: record };
}

/** What the caller's session looks like; the token is the one the caller sent, which PlanoAuth clients reuse. */
function sessionObject(caller: GetCallerResponse, token: string): Session {
  const c = caller.credential;
  return {
    id: c?.id ?? "",
    token,
    username: c?.name ?? "",
    tenant: caller.tenant?.id ?? null,
    remember_me: c?.rememberMe ?? false,
    created_at: iso(c?.createTime),
    last_used_at: iso(c?.lastUsedTime),
    expires_at: c?.rememberMe ? null : iso(c?.expireTime),
  };
}

function iso(ts: Timestamp | undefined): string | null {
  return ts ? timestampToIso(ts) : null;
}

function reply(res: LegacyResponse, http: number, status: PlanoStatus, message: string, data: JsonObject) {
  send(res, http, "application/json; charset=utf-8", JSON.stringify({ status, message, data }));
}
