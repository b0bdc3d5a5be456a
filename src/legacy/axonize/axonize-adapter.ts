import type http from "node:http";
import type { JsonObject } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { AuditService } from "../../../gen/audit/v1/audit_service_pb.js";
import type { AuditEvent } from "../../../gen/audit/v1/event_pb.js";
import { Reason } from "../../errors.js";
import { readBody } from "../../server/body.js";
import type { LegacyAdapter, LegacyDeps } from "../adapter.js";
import { type LegacyRequest, type LegacyResponse, mediaType, send } from "../http.js";
import { failureStatus, legacyDescription, legacyField, type RpcFailure, rpcFailure } from "../rpc-failure.js";
import { echo, readAudit, toEvent, type Violation } from "./axonize-audit.js";

/** `/odata/Audits`, with or without a trailing slash, in any letter case. */
const ROUTE = /^\/odata\/audits\/?$/i;

/** Core field paths as Axonize property names. */
const PROPERTY_NAMES = {
  "event.id": "id",
  "event.action": "action",
  "event.category": "category",
  "event.target.id": "entityId",
  "event.target.name": "entityName",
  "event.target.type": "category",
  "event.actor.id": "userId",
  "event.actor.email": "userEmail",
  "event.actor.name": "userName",
  "event.actor.roles": "roles",
  "event.occurred_at": "requestDateTime",
  "event.completed_at": "responseDateTime",
  "event.request.ip": "ip",
  "event.request.url": "requestUrl",
  "event.request.duration_ms": "requestDurationMs",
  "event.request.correlation_id": "correlationId",
  "event.outcome.code": "result",
  "event.source": "sourceName",
  "event.attributes": "application, tenant, actionDisplay, categoryDisplay, appId, additionalInfo",
};

/** An OData error before rendering. */
interface ODataError {
  http: number;
  code: string;
  message: string;
  target?: string;
  details?: Violation[];
}

/** Axonize `Audits/Post`: an OData JSON entity in, the entity echoed with what the server set, `201 Created`. */
export function axonizeAdapter(deps: LegacyDeps): LegacyAdapter {
  const { call } = deps;

  async function serve(req: LegacyRequest, res: LegacyResponse): Promise<ODataError | undefined> {
    if (req.method !== "POST") {
      (res as http.ServerResponse).setHeader("allow", "POST");
      return { http: 405, code: "METHOD_NOT_ALLOWED", message: `${req.method} is not supported on Audits; use POST` };
    }
    // The caller's own Authorization header (`<token>` or `Bearer <token>`) goes to the core unchanged.
    const authorization = req.headers.authorization;
    try {
      const caller = await deps.authenticate(req, AuditService.method.create, "");
      if (!caller?.tenant) {
        return { http: 403, code: Reason.TenantMismatch, message: "a global credential belongs to no tenant" };
      }
    } catch (error) {
      return fromRpc(rpcFailure(error), res);
    }

    const type = mediaType(req);
    // The two media types ASP.NET's JSON formatter reads.
    if (type !== "application/json" && type !== "text/json") {
      return {
        http: 400,
        code: "UNSUPPORTED_MEDIA_TYPE",
        message: `the request entity's media type '${type}' is not supported; send application/json`,
      };
    }
    const raw = await readBody(req, deps.maxBodyBytes);
    if (raw === "too-large") {
      return { http: 400, code: Reason.BodyTooLarge, message: `the request body exceeds ${deps.maxBodyBytes} bytes` };
    }
    if (raw === "aborted") return { http: 400, code: "MALFORMED_JSON", message: "the request body was not received" };
    const body = parseObject(raw);
    if (typeof body === "string") return { http: 400, code: "MALFORMED_JSON", message: body };

    const audit = readAudit(body);
    if (Array.isArray(audit)) return badRequest(audit);
    const headerAppId = header(req, "appid");
    const appId = audit.text.appId ?? headerAppId;
    if (audit.text.appId !== undefined && headerAppId !== undefined && audit.text.appId !== headerAppId) {
      return badRequest([
        { target: "appId", message: "appId differs from the appId header", reason: Reason.InvalidField },
      ]);
    }
    let event: AuditEvent | undefined;
    try {
      ({ event } = await call(AuditService.method.create, { event: toEvent(audit, appId) }, authorization));
    } catch (error) {
      return fromRpc(rpcFailure(error), res);
    }
    if (!event) throw new Error("Create answered without an event");
    const context = `${baseUrl(req)}/odata/$metadata#Audits/$entity`;
    send(res, 201, "application/json; charset=utf-8", JSON.stringify(echo(audit, event, appId, context)));
    return undefined;
  }

  return {
    name: "axonize",
    owns: (path) => ROUTE.test(path),
    async handle(req, res) {
      let error: ODataError | undefined;
      try {
        error = await serve(req, res);
      } catch (cause) {
        deps.logger.error({ err: cause, adapter: "axonize" }, "Axonize request failed");
        error = { http: 500, code: Reason.Internal, message: "An error has occurred." };
      }
      if (!error) return;
      const body: JsonObject = { code: error.code, message: error.message };
      if (error.target !== undefined) body.target = error.target;
      if (error.details && error.details.length > 1) {
        body.details = error.details.map((d) => ({ code: d.reason, message: d.message, target: d.target }));
      }
      send(res, error.http, "application/json; charset=utf-8", JSON.stringify({ error: body }));
    },
  };
}

function badRequest(violations: Violation[]): ODataError {
  const [first] = violations;
  return {
    http: 400,
    code: first?.reason ?? Reason.InvalidField,
    message: first?.message ?? "the request is not valid",
    target: first?.target,
    details: violations,
  };
}

/** The OData error for a failed RPC, from its code and reason. */
function fromRpc(failure: RpcFailure, res: LegacyResponse): ODataError {
  const http = failureStatus(failure, res);
  const plain: ODataError = { http, code: failure.reason, message: failure.message };
  if (failure.code === Code.InvalidArgument && failure.violations.length > 0) {
    return badRequest(
      failure.violations.map((v) => {
        const target = legacyField(v.field, PROPERTY_NAMES);
        const message = `${target} ${legacyDescription(v.description, PROPERTY_NAMES)}`;
        return { target, message, reason: v.reason as Reason };
      }),
    );
  }
  if (failure.code === Code.AlreadyExists) {
    return { ...plain, target: "id", message: "id is already used by an audit with different content" };
  }
  return plain;
}

/** A JSON object, or why the body is not one. */
function parseObject(raw: Buffer): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(raw));
  } catch {
    return "the request body is not valid UTF-8 JSON";
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "the request body must be a JSON object with the Audit's properties";
  }
  return value as Record<string, unknown>;
}

function header(req: LegacyRequest, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

/** The service's own base URL as the caller reached it, for `@odata.context`. */
function baseUrl(req: LegacyRequest): string {
  const forwarded = header(req, "x-forwarded-proto")?.split(",", 1)[0]?.trim();
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  const scheme = forwarded === "https" || forwarded === "http" ? forwarded : encrypted ? "https" : "http";
  return `${scheme}://${header(req, "host") ?? header(req, ":authority") ?? "localhost"}`;
}
