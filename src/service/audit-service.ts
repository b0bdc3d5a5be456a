import { create, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  type AuditService,
  type BatchCreateRequest,
  type CreateRequest,
  type CreateStreamTicketRequest,
  EventFilterSchema,
  type GetEventRequest,
  type ListRequest,
  ListRequestSchema,
  Order,
  type PublishRequest,
  type TailRequest,
} from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { kPrincipal } from "../auth/principal.js";
import type { StreamTickets } from "../auth/stream-tickets.js";
import type { Clock } from "../clock.js";
import { canonicalJson } from "../codec/event-content.js";
import { domainError, type FieldViolation, invalidArgument, Reason } from "../errors.js";
import { type EventFeed, FeedAborted } from "../store/event-feed.js";
import { SERVICE_CATEGORY_PREFIX } from "../store/event-filter.js";
import type { AppendResult, EventStore, ListQuery, NewEvent } from "../store/event-store.js";
import type { GroupCommit } from "../store/group-commit.js";
import type { TemplateStore } from "../store/template-store.js";
import { microsToTimestamp } from "../store/time.js";
import { kTraceId } from "./call-context.js";
import { countEventsHandler } from "./count-events.js";
import { readEvent, withCorrelation } from "./event-input.js";
import { rowToEvent } from "./event-output.js";
import { readFilter } from "./filter-input.js";
import { ID_PATTERN, limits, quoted } from "./limits.js";
import { PageTokens } from "./page-token.js";
import { readPublishRequest } from "./publish.js";

export interface AuditServiceDeps {
  store: EventStore;
  /** GetCheckpoint, GetInclusionProof and GetConsistencyProof: the verifiable log's RPCs (src/vlog/log-service.ts). */
  log: Pick<ServiceImpl<typeof AuditService>, "getCheckpoint" | "getInclusionProof" | "getConsistencyProof">;
  /** Single-event appends (Create, Publish) go through it, so concurrent calls share a commit. */
  groupCommit: Pick<GroupCommit, "append">;
  templates: TemplateStore;
  feed: EventFeed;
  clock: Clock;
  pageTokens: PageTokens;
  tickets: StreamTickets;
  /** The longest a Tail stream lives before it is ended with UNAVAILABLE (resume by sequence). */
  tailMaxLifetimeMs: number;
}

/** The AuditService handlers: every protocol and route reaches the log through these. */
export function createAuditService(deps: AuditServiceDeps): ServiceImpl<typeof AuditService> {
  const { store, groupCommit, templates, feed, clock, pageTokens, tickets } = deps;

  /** The stored events, or ALREADY_EXISTS naming the request field of the id that is taken. */
  async function stored(appending: Promise<AppendResult>, fieldOf: (index: number) => string) {
    const result = await appending;
    if (!result.ok) {
      throw domainError(
        Code.AlreadyExists,
        Reason.DuplicateId,
        `event id "${result.id}" already exists with different content`,
        { id: result.id, field: fieldOf(result.conflictIndex) },
      );
    }
    return result.events.map(rowToEvent);
  }

  return {
    ...deps.log,
    async create(req: CreateRequest, ctx: HandlerContext) {
      const violations: FieldViolation[] = [];
      const tenant = req.tenant;
      let event: NewEvent | undefined;
      if (!req.event) violations.push({ field: "event", description: "is required", reason: Reason.MissingField });
      else {
        event = readEvent(req.event, "event.", clock.nowMicros(), violations);
        checkCategory(req.event.category, "event.category", violations);
      }
      if (violations.length > 0 || !event) throw invalidArgument(violations);
      const traceId = ctx.values.get(kTraceId);
      const [created] = await stored(groupCommit.append(tenant, withCorrelation(event, traceId)), () => "event.id");
      return { event: created };
    },

    async batchCreate(req: BatchCreateRequest, ctx: HandlerContext) {
      const violations: FieldViolation[] = [];
      const tenant = req.tenant;
      if (req.events.length === 0) {
        violations.push({ field: "events", description: "must hold at least one event", reason: Reason.MissingField });
      } else if (req.events.length > limits.batchEvents) {
        violations.push({
          field: "events",
          description: `must hold at most ${limits.batchEvents} events, got ${req.events.length}`,
        });
      }
      const now = clock.nowMicros();
      const batch: NewEvent[] = [];
      const firstIndexOfId = new Map<string, number>();
      const traceId = ctx.values.get(kTraceId);
      req.events.slice(0, limits.batchEvents).forEach((e, i) => {
        const event = readEvent(e, `events[${i}].`, now, violations);
        checkCategory(e.category, `events[${i}].category`, violations);
        if (event) batch.push(withCorrelation(event, traceId));
        if (e.id === "") return;
        const first = firstIndexOfId.get(e.id);
        if (first === undefined) firstIndexOfId.set(e.id, i);
        else violations.push({ field: `events[${i}].id`, description: `repeats the id of events[${first}]` });
      });
      if (violations.length > 0) throw invalidArgument(violations);
      return { events: await stored(store.append(tenant, batch, clock), (i) => `events[${i}].id`) };
    },

    async publish(req: PublishRequest, ctx: HandlerContext) {
      if (req.eventName === "") {
        throw invalidArgument([{ field: "event_name", description: "is required", reason: Reason.MissingField }]);
      }
      const event = await readPublishRequest(req, templates, clock.nowMicros());
      const traceId = ctx.values.get(kTraceId);
      const [published] = await stored(groupCommit.append(req.tenant, withCorrelation(event, traceId)), () => "id");
      return { event: published };
    },

    async *tail(req: TailRequest, ctx: HandlerContext) {
      const violations: FieldViolation[] = [];
      const filter = readFilter(req.filter ?? create(EventFilterSchema), "filter.", violations);
      const after = req.afterSequence;
      if (after !== undefined && (after < 0n || after > BigInt(Number.MAX_SAFE_INTEGER))) {
        violations.push({ field: "after_sequence", description: "must be a sequence, zero or more" });
      }
      if (violations.length > 0) throw invalidArgument(violations);
      // A stream ends after its longest life, so no stream holds on to a credential or an instance for ever.
      const lifetime = new AbortController();
      const maxMs = deps.tailMaxLifetimeMs;
      const timer = setTimeout(() => {
        const message = `the stream reached its longest life (${maxMs} ms); reconnect`;
        lifetime.abort(domainError(Code.Unavailable, Reason.TailLifetimeReached, message));
      }, maxMs);
      try {
        const rows = feed.subscribe({
          tenant: req.tenant,
          filter,
          afterSequence: after === undefined ? undefined : Number(after),
          signal: AbortSignal.any([ctx.signal, lifetime.signal]),
        });
        for await (const row of rows) yield { event: rowToEvent(row) };
      } catch (error) {
        throw error instanceof FeedAborted ? abortedTail(error) : error;
      } finally {
        clearTimeout(timer);
      }
    },

    countEvents: countEventsHandler(store, clock),

    async getEvent(req: GetEventRequest) {
      if (req.id === "")
        throw invalidArgument([{ field: "id", description: "is required", reason: Reason.MissingField }]);
      if (!ID_PATTERN.test(req.id)) {
        throw invalidArgument([{ field: "id", description: "must be an event id: 1-128 of A-Z a-z 0-9 . _ : -" }]);
      }
      const row = await store.get(req.tenant, req.id);
      if (!row)
        throw domainError(Code.NotFound, Reason.EventNotFound, `no event of the tenant has id ${quoted(req.id)}`);
      return { event: rowToEvent(row) };
    },

    async createStreamTicket(req: CreateStreamTicketRequest, ctx: HandlerContext) {
      const principal = ctx.values.get(kPrincipal);
      if (!principal) throw domainError(Code.Unauthenticated, Reason.MissingCredential, "this call needs a credential");
      const { ticket, expiresAtMicros } = tickets.issue(principal, req.tenant);
      return { ticket, expireTime: microsToTimestamp(expiresAtMicros) };
    },

    async list(req: ListRequest) {
      const violations: FieldViolation[] = [];
      const tenant = req.tenant;
      const query = readListQuery(req, tenant, clock.nowMicros(), violations);
      if (violations.length > 0) throw invalidArgument(violations);
      const filters = PageTokens.fingerprint(listFilters(req));
      if (req.pageToken !== "") {
        const cursor = pageTokens.decode(req.pageToken, filters);
        if (typeof cursor === "string") {
          throw invalidArgument([{ field: "page_token", description: cursor, reason: Reason.InvalidPageToken }]);
        }
        query.after = cursor;
      }
      const pageSize = query.limit;
      const rows = await store.list({ ...query, limit: pageSize + 1 });
      const page = rows.slice(0, pageSize);
      const last = page[page.length - 1];
      const nextPageToken =
        rows.length > pageSize && last
          ? pageTokens.encode({ occurredAt: last.occurredAt, sequence: last.sequence, filters })
          : "";
      return { events: page.map(rowToEvent), nextPageToken };
    },
  };
}

function readListQuery(req: ListRequest, tenant: string, nowMicros: bigint, violations: FieldViolation[]): ListQuery {
  if (req.pageSize < 0 || req.pageSize > limits.pageSizeMax) {
    violations.push({ field: "page_size", description: `must be between 0 and ${limits.pageSizeMax}` });
  }
  if (!(req.order in Order)) violations.push({ field: "order", description: `unknown value ${req.order}` });
  return {
    ...readFilter(req, "", violations),
    tenant,
    limit: req.pageSize === 0 ? limits.pageSizeDefault : Math.min(Math.max(req.pageSize, 1), limits.pageSizeMax),
    newestFirst: req.order !== Order.OLDEST_FIRST,
    nowMicros,
  };
}

/** Everything that selects rows, so a page token cannot be replayed against another listing. */
function listFilters(req: ListRequest): string {
  return canonicalJson(toJson(ListRequestSchema, { ...req, pageSize: 0, pageToken: "" }));
}

/** The service's own categories are its alone: a client can neither forge a self-audit record nor hide among them. */
function checkCategory(category: string, field: string, violations: FieldViolation[]) {
  if (category.startsWith(SERVICE_CATEGORY_PREFIX)) {
    violations.push({ field, description: `categories "${SERVICE_CATEGORY_PREFIX}*" are the service's own records` });
  }
}

/**
 * A Tail ended by its signal. Ended by the service (a credential, the longest life: an error with an ErrorInfo), the
 * error says where to resume, as the feed's own endings do; ended by the caller or the framework, it is the signal's.
 */
function abortedTail(aborted: FeedAborted): ConnectError {
  const error = ConnectError.from(aborted.reason);
  const info = error.findDetails(ErrorInfoSchema)[0];
  if (!info) return error;
  const lastSequence = String(aborted.lastSequence);
  return domainError(error.code, info.reason, `${error.rawMessage}; resume with after_sequence=${lastSequence}`, {
    ...info.metadata,
    lastSequence,
  });
}
