import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { EventFilterSchema } from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";

/**
 * The view's state as the page URL holds it, so a view can be bookmarked and shared: the filters, the tenant (for a
 * superadmin) and the open event. Never the token.
 */
export const FIELDS = [
  "range",
  "from",
  "to",
  "action",
  "actor",
  "actorName",
  "target",
  "targetType",
  "outcome",
  "source",
  "category",
  "eventName",
  "parent",
  "children",
] as const;
export type Field = (typeof FIELDS)[number];
export type View = Partial<Record<Field | "tenant" | "event", string>>;

export function readView(search: string = location.search): View {
  const params = new URLSearchParams(search);
  const view: View = {};
  for (const key of [...FIELDS, "tenant", "event"] as const) {
    const value = params.get(key);
    if (value) view[key] = value;
  }
  return view;
}

export function viewUrl(view: View): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(view)) if (value) params.set(key, value);
  const query = params.toString();
  return query ? `?${query}` : location.pathname;
}

const RANGES: Record<string, number> = {
  "15m": 15 * 60e3,
  "1h": 3600e3,
  "24h": 86400e3,
  "7d": 7 * 86400e3,
  "30d": 30 * 86400e3,
};

/** The time range the view selects, resolved against `now`: quick picks are relative, so a bookmark stays current. */
export function timeRange(view: View, now = Date.now()): { startMs?: number; endMs?: number } {
  const span = view.range ? RANGES[view.range] : undefined;
  if (span !== undefined) return { startMs: now - span };
  if (view.range !== "custom") return {};
  const parse = (text?: string) => (text ? Date.parse(text) : Number.NaN);
  const startMs = parse(view.from);
  const endMs = parse(view.to);
  return { startMs: Number.isNaN(startMs) ? undefined : startMs, endMs: Number.isNaN(endMs) ? undefined : endMs };
}

const OUTCOMES: Record<string, OutcomeStatus> = {
  success: OutcomeStatus.SUCCESS,
  failure: OutcomeStatus.FAILURE,
};

/** List's filter fields, which Tail's and CountEvents' EventFilter has under the same names. */
export type Filter = Omit<MessageInitShape<typeof EventFilterSchema>, "$typeName">;

/** The view as List's, Tail's and CountEvents' filter. */
export function filterOf(view: View, now = Date.now()): Filter {
  const { startMs, endMs } = timeRange(view, now);
  return {
    startTime: startMs === undefined ? undefined : timestampFromMs(startMs),
    endTime: endMs === undefined ? undefined : timestampFromMs(endMs),
    actions: (view.action ?? "")
      .split(",")
      .map((a) => a.trim())
      .filter(Boolean),
    actorId: view.actor ?? "",
    actorName: view.actorName ?? "",
    targetId: view.target ?? "",
    targetType: view.targetType ?? "",
    outcome: view.outcome ? (OUTCOMES[view.outcome] ?? OutcomeStatus.UNSPECIFIED) : OutcomeStatus.UNSPECIFIED,
    source: view.source ?? "",
    category: view.category ?? "",
    eventName: view.eventName ?? "",
    parentId: view.parent ?? "",
    includeChildren: view.children === "1",
  };
}
