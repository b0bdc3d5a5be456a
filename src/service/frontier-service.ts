import { create, type JsonObject } from "@bufbuild/protobuf";
import { type Timestamp, TimestampSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type AuditService,
  BatchCreateRequestSchema,
  ListRequestSchema,
  ListResponseSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import { ActorSchema, type AuditEvent, AuditEventSchema, TargetSchema } from "../../gen/audit/v1/event_pb.js";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  type AuditLog,
  AuditLogSchema,
  type CreateOrganizationAuditLogsRequest,
  type FrontierService,
  type GetOrganizationAuditLogRequest,
  type ListOrganizationAuditLogsRequest,
} from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";
import { domainError, type FieldViolation, invalidArgument, Reason } from "../errors.js";
import type { EventStore } from "../store/event-store.js";
import { rowToEvent } from "./event-output.js";
import { ID_PATTERN, limits } from "./limits.js";

export interface FrontierServiceDeps {
  /** The AuditService handlers: Frontier's calls are theirs under Frontier's names. */
  audit: Pick<ServiceImpl<typeof AuditService>, "batchCreate" | "list">;
  store: Pick<EventStore, "get">;
}

/** The actor type that makes a log a "system" log, which ListOrganizationAuditLogs' ignore_system leaves out. */
const SYSTEM_ACTOR_TYPE = "system";
/** Most logs one List call returns (Frontier's List has no paging): the newest ones. */
const FRONTIER_LIST_MAX = limits.pageSizeMax;
/** With ignore_system, how many logs a List call reads at most to find FRONTIER_LIST_MAX that are not system logs. */
const FRONTIER_LIST_SCAN = 10 * limits.pageSizeMax;

/**
 * Frontier's audit-log RPCs (proto/raystack/frontier/v1beta1) on top of the AuditService handlers. The auth
 * interceptor has already authenticated the caller, checked the role, and replaced org_id (a slug or a numeric id)
 * by the tenant's slug, so every request here names a tenant the caller may act on.
 */
export function createFrontierService(deps: FrontierServiceDeps): ServiceImpl<typeof FrontierService> {
  const { audit, store } = deps;
  return {
    async createOrganizationAuditLogs(req: CreateOrganizationAuditLogsRequest, ctx) {
      // Source and action are required by Frontier (AuditLog's field_behavior), not by AuditEvent. A batch over the
      // limit is left to BatchCreate, which says so once rather than once per log.
      if (req.logs.length <= limits.batchEvents) {
        const violations: FieldViolation[] = [];
        req.logs.forEach((log, i) => {
          for (const field of ["source", "action"] as const) {
            if (log[field] === "") {
              violations.push({
                field: `logs[${i}].${field}`,
                description: "is required",
                reason: Reason.MissingField,
              });
            }
          }
        });
        if (violations.length > 0) throw invalidArgument(violations);
      }
      const request = create(BatchCreateRequestSchema, { tenant: req.orgId, events: req.logs.map(logToEvent) });
      try {
        await audit.batchCreate(request, ctx);
      } catch (error) {
        throw error instanceof ConnectError ? inFrontierTerms(error) : error;
      }
      return {};
    },

    async listOrganizationAuditLogs(req: ListOrganizationAuditLogsRequest, ctx) {
      const request = create(ListRequestSchema, {
        tenant: req.orgId,
        pageSize: FRONTIER_LIST_MAX,
        source: req.source,
        // An action ending in "*" matches it as a prefix, as in AuditService.List.
        actions: req.action === "" ? [] : [req.action],
        startTime: req.startTime,
        endTime: req.endTime && inclusiveEnd(req.endTime),
        // Frontier has no parent/child logs: every log is listed.
        includeChildren: true,
      });
      const logs: AuditLog[] = [];
      let read = 0;
      try {
        for (;;) {
          // The handler returns a ListResponse already; create() hands it back as it is.
          const page = create(ListResponseSchema, await audit.list(request, ctx));
          read += page.events.length;
          for (const event of page.events) {
            if (req.ignoreSystem && event.actor?.type === SYSTEM_ACTOR_TYPE) continue;
            logs.push(eventToLog(event));
            if (logs.length === FRONTIER_LIST_MAX) return { logs };
          }
          if (page.nextPageToken === "" || read >= FRONTIER_LIST_SCAN) return { logs };
          request.pageToken = page.nextPageToken;
        }
      } catch (error) {
        throw error instanceof ConnectError ? inFrontierTerms(error) : error;
      }
    },

    async getOrganizationAuditLog(req: GetOrganizationAuditLogRequest) {
      if (req.id === "") {
        throw invalidArgument([{ field: "id", description: "is required", reason: Reason.MissingField }]);
      }
      // No stored id is outside ID_PATTERN (generated ones are UUIDs), so any other is not looked up, nor quoted back.
      const row = ID_PATTERN.test(req.id) ? await store.get(req.orgId, req.id) : undefined;
      if (!row) throw domainError(Code.NotFound, Reason.EventNotFound, "no audit log of the organization has this id");
      return { log: eventToLog(rowToEvent(row)) };
    },
  };
}

function logToEvent(log: AuditLog): AuditEvent {
  const event = create(AuditEventSchema, {
    id: log.id,
    source: log.source,
    action: log.action,
    occurredAt: log.createdAt,
  });
  if (log.actor) event.actor = create(ActorSchema, { id: log.actor.id, type: log.actor.type, name: log.actor.name });
  if (log.target)
    event.target = create(TargetSchema, { id: log.target.id, type: log.target.type, name: log.target.name });
  if (Object.keys(log.context).length > 0) event.attributes = { ...log.context };
  return event;
}

/** As Frontier renders a log: actor and target always present, context values as text. */
function eventToLog(event: AuditEvent): AuditLog {
  return create(AuditLogSchema, {
    id: event.id,
    source: event.source,
    action: event.action,
    actor: { id: event.actor?.id, type: event.actor?.type, name: event.actor?.name },
    target: { id: event.target?.id, type: event.target?.type, name: event.target?.name },
    context: contextOf(event.attributes),
    createdAt: event.occurredAt,
  });
}

/** Attributes written through other APIs may hold any JSON; Frontier's context holds strings, so others become JSON text. */
function contextOf(attributes: JsonObject | undefined): Record<string, string> {
  const context: Record<string, string> = {};
  for (const [key, value] of Object.entries(attributes ?? {})) {
    context[key] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return context;
}

/** Frontier's end_time is inclusive, List's exclusive; events are stored to the microsecond. */
function inclusiveEnd(end: Timestamp): Timestamp {
  const nanos = (Math.floor(end.nanos / 1000) + 1) * 1000;
  return create(
    TimestampSchema,
    nanos < 1e9 ? { seconds: end.seconds, nanos } : { seconds: end.seconds + 1n, nanos: 0 },
  );
}

/** An AuditEvent field path (`events[3].occurred_at`) under its Frontier name (`logs[3].created_at`). */
export function frontierField(path: string): string {
  return path
    .replace(/^events(?=\[|$)/, "logs")
    .replace(/^tenant$/, "org_id")
    .replace(/\.occurred_at$/, ".created_at")
    .replace(/\.attributes(?=\.|$)/, ".context");
}

/** A BatchCreate or List error with its field paths, and the messages quoting them, in Frontier's names. */
function inFrontierTerms(error: ConnectError): ConnectError {
  const violations = error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
  if (error.code === Code.InvalidArgument && violations.length > 0) {
    return invalidArgument(
      violations.map((v) => ({
        field: frontierField(v.field),
        // Descriptions may point at another entry ("repeats the id of events[0]") or count the batch.
        description: v.description.replace(/\bevents(?=\[)/g, "logs").replace(/\b(\d+) events\b/g, "$1 logs"),
        reason: v.reason as Reason,
      })),
    );
  }
  const info = error.findDetails(ErrorInfoSchema)[0];
  if (info?.reason === Reason.DuplicateId) {
    const field = frontierField(info.metadata.field ?? "logs");
    return domainError(
      error.code,
      info.reason,
      `${field}: an audit log with id ${JSON.stringify(info.metadata.id ?? "")} already exists with different content`,
      { ...info.metadata, field },
    );
  }
  return error;
}
