import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { CredentialKind } from "../../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../../gen/audit/v1/audit_service_pb.js";
import type { AuditEvent } from "../../../gen/audit/v1/event_pb.js";
import type { Principal } from "../../auth/principal.js";
import { Reason } from "../../errors.js";
import { readBody } from "../../server/body.js";
import { pgToTimestamp, timestampToIso } from "../../store/time.js";
import type { LegacyAdapter, LegacyDeps } from "../adapter.js";
import { bearer, type LegacyRequest, type LegacyResponse, mediaType, send } from "../http.js";
import { legacyDescription, legacyField, type RpcFailure, rpcFailure } from "../rpc-failure.js";
import { decodeParams, invalid, missing, type PlanoStatus, Problem, readRecord } from "./planoauth-params.js";

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
  const { call } = deps;

  async function serve(req: LegacyRequest, url: URL): Promise<Problem | Success> {
    if (url.pathname !== ROUTE || req.method !== "POST") {
      return new Problem("route-non-existent", `route ${req.method} ${url.pathname} does not exist`);
    }
    const type = mediaType(req);
    if (type !== "application/json" && !type.endsWith("+json")) {
      return new Problem("invalid-content-type", "the request must be sent as Content-Type: application/json");
    }
    const body = await readBody(req, deps.maxBodyBytes);
    if (typeof body === "string") {
      return new Problem(
        "invalid-encoded-params",
        body === "too-large"
          ? `the request body exceeds ${deps.maxBodyBytes} bytes`
          : "the request body was not received in full",
      );
    }
    const params = decodeParams(body);
    if (params instanceof Problem) return params;

    const token = params.token;
    if (token === undefined || token === null || token === "") return missing("token");
    if (typeof token !== "string") return invalid("token must be a string");
    if (!TOKEN.test(token)) return new Problem("invalid-token", "the token is not valid");
    const { authorization } = bearer(token);

    let caller: Principal | undefined;
    try {
      caller = await deps.authenticate(
        { headers: { authorization }, socket: req.socket },
        AuditService.method.create,
        "",
      );
    } catch (error) {
      return fromRpc(rpcFailure(error), undefined);
    }
    const session = caller?.kind === CredentialKind.SESSION ? sessionObject(caller, token) : undefined;
    if (!caller?.tenant) {
      return new Problem(
        "invalid-token",
        "a global credential belongs to no tenant; use a tenant's API key or session",
      );
    }
    // PlanoAuth's "client-required": the credential is valid but carries no role at all.
    if (caller.roles.size === 0) return clientRequired(session);

    const record = readRecord(params, {
      type: caller.kind === CredentialKind.API_KEY ? "api_key" : "user",
      name: caller.name,
    });
    if (record instanceof Problem) return record;
    let event: AuditEvent | undefined;
    try {
      ({ event } = await call(AuditService.method.create, { event: record }, authorization));
    } catch (error) {
      return fromRpc(rpcFailure(error), session);
    }
    if (!event) throw new Error("Create answered without an event");
    return { event, session };
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
        outcome = new Problem("application-crash", "internal error; please try again later");
      }
      if (outcome instanceof Problem) {
        reply(res, outcome.http, outcome.status, outcome.message, outcome.data);
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

function clientRequired(session: Session | undefined): Problem {
  const message = "the credential has no role; register as a client first";
  return new Problem("client-required", message, undefined, session ? { session } : {});
}

/** The status for a failed RPC, chosen from its code and reason. */
function fromRpc(failure: RpcFailure, session: Session | undefined): Problem {
  switch (failure.code) {
    case Code.Unauthenticated:
      return new Problem(
        failure.reason === Reason.SessionExpired ? "session-expired" : "invalid-token",
        failure.message,
      );
    case Code.PermissionDenied:
      if (failure.reason === Reason.NoRole) return clientRequired(session);
      return new Problem("invalid-token", failure.message);
    case Code.InvalidArgument: {
      const v = failure.violations[0];
      if (!v) return invalid(failure.message);
      const param = legacyField(v.field, PARAM_NAMES);
      const message = `${param}: ${legacyDescription(v.description, PARAM_NAMES)}`;
      return new Problem(v.reason === Reason.MissingField ? "missing-param" : "invalid-param", message);
    }
    case Code.AlreadyExists:
      return invalid("unique_id was already used for a record with different content");
    case Code.ResourceExhausted:
      return new Problem("application-crash", failure.message, 429);
    default:
      return new Problem("application-crash", failure.message);
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
function sessionObject(caller: Principal, token: string): Session {
  const session = caller.session;
  return {
    id: caller.credentialId,
    token,
    username: caller.name,
    tenant: caller.tenant || null,
    remember_me: session?.rememberMe ?? false,
    created_at: iso(session?.createdAt),
    last_used_at: iso(session?.lastUsedAt),
    expires_at: session?.rememberMe ? null : iso(session?.expiresAt),
  };
}

function iso(ts: Timestamp | string | undefined): string | null {
  if (ts === undefined) return null;
  return timestampToIso(typeof ts === "string" ? pgToTimestamp(ts) : ts);
}

function reply(res: LegacyResponse, http: number, status: PlanoStatus, message: string, data: JsonObject) {
  send(res, http, "application/json; charset=utf-8", JSON.stringify({ status, message, data }));
}
