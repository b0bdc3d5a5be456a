import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type AuditEvent, AuditEventSchema, OutcomeStatus } from "../../gen/audit/v1/event_pb.js";
import { audit } from "./api.js";
import type { Filter } from "./query.js";

export type ExportFormat = "ndjson" | "csv";

const CSV_COLUMNS: [string, (e: AuditEvent) => string][] = [
  ["sequence", (e) => String(e.sequence)],
  ["id", (e) => e.id],
  ["occurred_at", (e) => (e.occurredAt ? timestampDate(e.occurredAt).toISOString() : "")],
  ["received_at", (e) => (e.receivedAt ? timestampDate(e.receivedAt).toISOString() : "")],
  ["action", (e) => e.action],
  ["category", (e) => e.category],
  ["source", (e) => e.source],
  ["actor_id", (e) => e.actor?.id ?? ""],
  ["actor_type", (e) => e.actor?.type ?? ""],
  ["actor_name", (e) => e.actor?.name ?? ""],
  ["actor_email", (e) => e.actor?.email ?? ""],
  ["target_id", (e) => e.target?.id ?? ""],
  ["target_type", (e) => e.target?.type ?? ""],
  ["target_name", (e) => e.target?.name ?? ""],
  ["outcome", (e) => OutcomeStatus[e.outcome?.status ?? 0] ?? ""],
  ["outcome_code", (e) => e.outcome?.code ?? ""],
  ["outcome_message", (e) => e.outcome?.message ?? ""],
  ["parent_id", (e) => e.parentId],
  ["attributes", (e) => (e.attributes ? JSON.stringify(e.attributes) : "")],
];

/** RFC 4180: a value with a comma, quote or line break is quoted, quotes doubled. Values are exported as stored. */
function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function lines(events: AuditEvent[], format: ExportFormat): string {
  if (format === "ndjson") return events.map((e) => `${JSON.stringify(toJson(AuditEventSchema, e))}\n`).join("");
  return events.map((e) => `${CSV_COLUMNS.map(([, get]) => csvCell(get(e))).join(",")}\r\n`).join("");
}

/**
 * Every event of the filtered view, newest first, read page by page (1000 a page) with List's keyset token. Each
 * page is turned into a Blob at once and its events dropped, so the page's memory holds one page of events; the
 * browser keeps the Blob parts (on disk when large) until the download is handed over.
 */
export async function exportView(
  tenant: string,
  filter: Filter,
  format: ExportFormat,
  progress: (count: number) => void,
): Promise<{ blob: Blob; count: number }> {
  const parts: Blob[] = [];
  const type = format === "ndjson" ? "application/x-ndjson" : "text/csv";
  if (format === "csv") parts.push(new Blob([`${CSV_COLUMNS.map(([name]) => name).join(",")}\r\n`]));
  let count = 0;
  let pageToken = "";
  do {
    const page = await audit.list({ tenant, ...filter, pageSize: 1000, pageToken });
    parts.push(new Blob([lines(page.events, format)], { type }));
    count += page.events.length;
    progress(count);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return { blob: new Blob(parts, { type }), count };
}
