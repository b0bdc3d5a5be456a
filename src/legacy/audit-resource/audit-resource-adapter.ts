import type http from "node:http";
import { Code } from "@connectrpc/connect";
import { AuditService } from "../../../gen/audit/v1/audit_service_pb.js";
import { Reason } from "../../errors.js";
import type { LegacyAdapter, LegacyDeps } from "../adapter.js";
import { type LegacyResponse, send } from "../http.js";
import { failureStatus, legacyDescription, legacyField, type RpcFailure, rpcFailure } from "../rpc-failure.js";
import { PARAMETER_NAMES, readQuery } from "./audit-query.js";
import { type Format, JSON_FORMAT, negotiate, renderAudits, renderError, toRecord } from "./audit-rendering.js";

/** "Audit Resource" `GET /audit`: the caller's own tenant's audits, filtered, as JSON or XML per Accept. */
export function auditResourceAdapter(deps: LegacyDeps): LegacyAdapter {
  const { call } = deps;

  return {
    name: "audit-resource",
    owns: (path) => path === "/audit" || path === "/audit/",
    async handle(req, res, url) {
      const format = negotiate(req.headers.accept);
      const fail = (status: number, code: string, message: string, parameter?: string) =>
        send(
          res,
          status,
          (format ?? JSON_FORMAT).mediaType,
          renderError(format ?? JSON_FORMAT, code, message, parameter),
        );
      if (!format) {
        fail(406, "NOT_ACCEPTABLE", "this resource is available as application/json or application/xml");
        return;
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        (res as http.ServerResponse).setHeader("allow", "GET, HEAD");
        fail(405, "METHOD_NOT_ALLOWED", `${req.method} is not supported on /audit; use GET`);
        return;
      }
      try {
        // The caller's own Authorization header, whatever its scheme, goes to the core unchanged.
        const authorization = req.headers.authorization;
        let accountId: number;
        try {
          const caller = await deps.authenticate(req, AuditService.method.list, "");
          const tenant = caller?.tenant ? await deps.tenants.get(caller.tenant) : undefined;
          if (!tenant) {
            fail(403, Reason.TenantMismatch, "a global credential has no account; use a credential of the tenant");
            return;
          }
          accountId = Number(tenant.numericId);
        } catch (error) {
          renderFailure(res, format, rpcFailure(error));
          return;
        }
        const query = readQuery(url.searchParams);
        if ("parameter" in query) {
          fail(400, Reason.InvalidField, query.message, query.parameter);
          return;
        }
        try {
          const { events, nextPageToken } = await call(AuditService.method.list, query, authorization);
          // More matched than the cap: say so, since the document's format has no place for it.
          if (nextPageToken !== "") (res as http.ServerResponse).setHeader("x-result-truncated", "true");
          send(
            res,
            200,
            format.mediaType,
            renderAudits(
              events.map((e) => toRecord(e, accountId)),
              format,
            ),
          );
        } catch (error) {
          renderFailure(res, format, rpcFailure(error));
        }
      } catch (error) {
        deps.logger.error({ err: error, adapter: "audit-resource" }, "GET /audit failed");
        fail(500, Reason.Internal, "internal error");
      }
    },
  };
}

/** The HTTP status and error body for a failed RPC, from its code and reason. */
function renderFailure(res: LegacyResponse, format: Format, failure: RpcFailure): void {
  const status = failureStatus(failure, res);
  let message = failure.message;
  let parameter: string | undefined;
  const v = failure.code === Code.InvalidArgument ? failure.violations[0] : undefined;
  if (v) {
    parameter = legacyField(v.field, PARAMETER_NAMES);
    message = `${parameter}: ${legacyDescription(v.description, PARAMETER_NAMES)}`;
  }
  send(res, status, format.mediaType, renderError(format, failure.reason, message, parameter));
}
