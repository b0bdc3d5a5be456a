import { randomUUID } from "node:crypto";
import type { JsonValue } from "@bufbuild/protobuf";
import { createRegistry } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";
import { AuditService } from "../../../gen/audit/v1/audit_service_pb.js";
import { file_google_rpc_error_details } from "../../../gen/google/rpc/error_details_pb.js";
import { domainError, type FieldViolation, invalidArgument } from "../../errors.js";
import { toConnectError } from "../../interceptors/error-mapping.js";
import { statusJson } from "../../rest/status.js";
import type { LegacyAdapter, LegacyDeps } from "../adapter.js";
import { type LegacyRequest, type LegacyResponse, mediaType, readBody, send } from "../http.js";
import { FrontierReason, frontierError } from "./errors.js";
import { isObject, readLogs } from "./logs-input.js";

/** The detail types Frontier errors carry, for rendering them as `Any` JSON. */
const errorDetailTypes = createRegistry(file_google_rpc_error_details);

const ROUTE = /^\/v1beta1\/organizations\/([^/]+)\/auditlogs$/;

/**
 * Frontier's "Create audit log" (shared/seeds/002_14a01cddf7bc661c.txt): a batch of logs for one organization, stored
 * atomically through BatchCreate. Every answer is grpc-gateway shaped: `{}` or a google.rpc.Status.
 */
export function frontierAdapter(deps: LegacyDeps): LegacyAdapter {
  const { clients, tenants, maxBodyBytes, logger, authenticate } = deps;

  async function handle(req: LegacyRequest, res: LegacyResponse, url: URL): Promise<void> {
    const orgId = organizationOf(url);
    if (req.method !== "POST") {
      const error = domainError(Code.Unimplemented, FrontierReason.MethodNotAllowed, "Method Not Allowed");
      return reply(res, error, 405, { allow: "POST" });
    }
    const authorization = req.headers.authorization;
    const callOptions = { headers: authorization ? { authorization } : {} };

    const org = await tenants.find(orgId);
    // Authentication comes before any answer about the organization, the media type or the body, so an anonymous
    // caller cannot probe which organizations exist. The organization names the tenant of a Basic `username`.
    await authenticate(req, AuditService.method.batchCreate, org?.id ?? orgId);
    if (!org) {
      const error = domainError(Code.NotFound, FrontierReason.OrganizationNotFound, `organization ${orgId} not found`);
      return reply(res, error);
    }

    if (mediaType(req) !== "application/json") {
      const error = domainError(
        Code.InvalidArgument,
        FrontierReason.UnsupportedMediaType,
        `the request body must be application/json, not ${mediaType(req) || "untyped"}`,
      );
      return reply(res, error, 415);
    }
    const body = await readBody(req, maxBodyBytes);
    if (body === "too-large") {
      const error = domainError(
        Code.ResourceExhausted,
        FrontierReason.BodyTooLarge,
        `the request body exceeds ${maxBodyBytes} bytes`,
      );
      // The rest of the body is left unread, so an HTTP/1.1 connection cannot carry another request.
      return reply(res, error, 413, req.httpVersionMajor === 1 ? { connection: "close" } : {});
    }
    if (body === "aborted") {
      res.end();
      return;
    }
    let json: JsonValue;
    try {
      json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)) as JsonValue;
    } catch (error) {
      const problem = `the request body is not valid JSON: ${(error as Error).message}`;
      return reply(res, domainError(Code.InvalidArgument, FrontierReason.MalformedBody, problem));
    }
    if (!isObject(json)) {
      const error = domainError(
        Code.InvalidArgument,
        FrontierReason.MalformedBody,
        "the request body must be a JSON object",
      );
      return reply(res, error);
    }
    const violations: FieldViolation[] = [];
    const events = readLogs(json, violations);
    if (violations.length > 0) return reply(res, invalidArgument(violations));

    await clients.audit.batchCreate({ tenant: org.id, events }, callOptions);
    send(res, 200, "application/json", "{}");
  }

  function reply(res: LegacyResponse, error: ConnectError, httpStatus?: number, headers: Record<string, string> = {}) {
    const status = httpStatus ?? codeToHttpStatus(error.code);
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    send(res, status, "application/json", JSON.stringify(statusJson(error, errorDetailTypes)));
  }

  return {
    name: "frontier",
    owns: (path) => ROUTE.test(path),
    async handle(req, res, url) {
      try {
        await handle(req, res, url);
      } catch (thrown) {
        const error =
          thrown instanceof ConnectError ? thrown : toConnectError(thrown, randomUUID(), "legacy/frontier", logger);
        reply(res, frontierError(error, organizationOf(url)));
      }
    },
  };
}

/** The org_id path segment, percent-decoded when it can be (an undecodable one matches no organization). */
function organizationOf(url: URL): string {
  const segment = ROUTE.exec(url.pathname)?.[1] ?? "";
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
