import { toJson } from "@bufbuild/protobuf";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  type AuditService,
  type BatchCreateRequest,
  type CreateRequest,
  type ListRequest,
  ListRequestSchema,
  Order,
} from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import type { Clock } from "../clock.js";
import { domainError, type FieldViolation, invalidArgument, Reason } from "../errors.js";
import type { AppendResult, EventStore, ListQuery, NewEvent } from "../store/event-store.js";
import type { GroupCommit } from "../store/group-commit.js";
import { timestampToIso } from "../store/time.js";
import { canonicalJson, isStorableText, readEvent } from "./event-input.js";
import { rowToEvent } from "./event-output.js";
import { limits } from "./limits.js";
import { PageTokens } from "./page-token.js";

export interface AuditServiceDeps {
  store: EventStore;
  /** Single-event appends (Create, Publish) go through it, so concurrent calls share a commit. */
  groupCommit: Pick<GroupCommit, "append">;
  clock: Clock;
  pageTokens: PageTokens;
}

/** The AuditService handlers: every protocol and route reaches the log through these. */
export function createAuditService(deps: AuditServiceDeps): ServiceImpl<typeof AuditService> {
  const { store, groupCommit, clock, pageTokens } = deps;

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
    async create(req: CreateRequest) {
      const violations: FieldViolation[] = [];
      const tenant = req.tenant;
      let event: NewEvent | undefined;
      if (!req.event) violations.push({ field: "event", description: "is required", reason: Reason.MissingField });
      else event = readEvent(req.event, "event.", clock.nowMicros(), violations);
      if (violations.length > 0 || !event) throw invalidArgument(violations);
      const [created] = await stored(groupCommit.append(tenant, event), () => "event.id");
      return { event: created };
    },

    async batchCreate(req: BatchCreateRequest) {
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
      req.events.slice(0, limits.batchEvents).forEach((e, i) => {
        const event = readEvent(e, `events[${i}].`, now, violations);
        if (event) batch.push(event);
        if (e.id === "") return;
        const first = firstIndexOfId.get(e.id);
        if (first === undefined) firstIndexOfId.set(e.id, i);
        else violations.push({ field: `events[${i}].id`, description: `repeats the id of events[${first}]` });
      });
      if (violations.length > 0) throw invalidArgument(violations);
      return { events: await stored(store.append(tenant, batch, clock), (i) => `events[${i}].id`) };
    },

    async publish() {
      throw domainError(Code.Unimplemented, Reason.Unimplemented, "Publish is not implemented yet");
    },

    // biome-ignore lint/correctness/useYield: Tail arrives with the streaming issue.
    async *tail() {
      throw domainError(Code.Unimplemented, Reason.Unimplemented, "Tail is not implemented yet");
    },

    async list(req: ListRequest) {
      const violations: FieldViolation[] = [];
      const tenant = req.tenant;
      const query = readListQuery(req, tenant, violations);
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

function readListQuery(req: ListRequest, tenant: string, violations: FieldViolation[]): ListQuery {
  const bad = (field: string, description: string) => violations.push({ field, description });
  if (req.pageSize < 0 || req.pageSize > limits.pageSizeMax) {
    bad("page_size", `must be between 0 and ${limits.pageSizeMax}`);
  }
  const time = (field: string, ts: ListRequest["startTime"]) => {
    if (!ts) return undefined;
    if (ts.nanos < 0 || ts.nanos > 999_999_999 || ts.seconds < -62135596800n || ts.seconds > 253402300799n) {
      bad(field, "must be a valid timestamp between 0001-01-01 and 9999-12-31");
      return undefined;
    }
    return timestampToIso(ts);
  };
  const startTime = time("start_time", req.startTime);
  const endTime = time("end_time", req.endTime);
  if (startTime && endTime && endTime <= startTime) bad("end_time", "must be after start_time");
  if (req.actions.length > limits.listActions) bad("actions", `must have at most ${limits.listActions} entries`);
  req.actions.forEach((action, i) => {
    const field = `actions[${i}]`;
    if (action === "" || action === "*") bad(field, "must be an action or a prefix followed by *");
    else if (action.length > limits.shortText) bad(field, `must be at most ${limits.shortText} characters`);
    else if (action.indexOf("*") !== -1 && action.indexOf("*") !== action.length - 1)
      bad(field, "may hold * only at the end");
  });
  const filters = {
    actor_id: req.actorId,
    actor_name: req.actorName,
    target_id: req.targetId,
    target_type: req.targetType,
    category: req.category,
    source: req.source,
    parent_id: req.parentId,
  };
  for (const [field, value] of Object.entries(filters)) {
    if (value.length > limits.longText) bad(field, `must be at most ${limits.longText} characters`);
    else if (!isStorableText(value)) bad(field, "must be valid UTF-8 text without NUL characters");
  }
  for (const [index, action] of req.actions.entries()) {
    if (!isStorableText(action)) bad(`actions[${index}]`, "must be valid UTF-8 text without NUL characters");
  }
  if (!(req.outcome in OutcomeStatus)) bad("outcome", `unknown value ${req.outcome}`);
  if (!(req.order in Order)) bad("order", `unknown value ${req.order}`);
  return {
    tenant,
    limit: req.pageSize === 0 ? limits.pageSizeDefault : Math.min(Math.max(req.pageSize, 1), limits.pageSizeMax),
    newestFirst: req.order !== Order.OLDEST_FIRST,
    startTime,
    endTime,
    actions: req.actions,
    actorId: req.actorId,
    actorName: req.actorName,
    targetId: req.targetId,
    targetType: req.targetType,
    category: req.category,
    source: req.source,
    outcomeStatus: req.outcome,
    parentId: req.parentId,
    includeChildren: req.includeChildren,
  };
}

/** Everything that selects rows, so a page token cannot be replayed against another listing. */
function listFilters(req: ListRequest): string {
  return canonicalJson(toJson(ListRequestSchema, { ...req, pageSize: 0, pageToken: "" }));
}
