import { timestampMs } from "@bufbuild/protobuf/wkt";
import type { CountEventsResponse } from "../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../gen/audit/v1/event_pb.js";

const SVG = "http://www.w3.org/2000/svg";
const STACK = [
  [OutcomeStatus.SUCCESS, "ok", "success"],
  [OutcomeStatus.FAILURE, "fail", "failure"],
  [OutcomeStatus.UNSPECIFIED, "none", "unspecified"],
] as const;

/** A bucket width that gives at most about 120 bars over `spanMs`, from a list of round widths. */
export function bucketSeconds(spanMs: number): number {
  const widths = [60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400];
  return widths.find((w) => spanMs / 1000 / w <= 120) ?? 366 * 86400;
}

/** Plain SVG: one bar per bucket, stacked by outcome, each with a tooltip; a legend with the totals. */
export function drawChart(figure: HTMLElement, reply: CountEventsResponse, label: string) {
  figure.replaceChildren();
  const max = Math.max(1, ...reply.buckets.map((b) => Number(b.total)));
  const n = Math.max(reply.buckets.length, 1);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${n * 10} 100`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  const totals = new Map<number, bigint>();
  reply.buckets.forEach((bucket, i) => {
    let y = 100;
    for (const [status, css, name] of STACK) {
      const count = bucket.outcomes.find((o) => o.status === status)?.count ?? 0n;
      totals.set(status, (totals.get(status) ?? 0n) + count);
      if (count === 0n) continue;
      const h = (Number(count) / max) * 100;
      y -= h;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", String(i * 10 + 1));
      rect.setAttribute("width", "8");
      rect.setAttribute("y", String(y));
      rect.setAttribute("height", String(h));
      rect.setAttribute("class", css);
      const title = document.createElementNS(SVG, "title");
      const at = bucket.startTime ? new Date(timestampMs(bucket.startTime)).toLocaleString() : "";
      title.textContent = `${at}: ${count} ${name}`;
      rect.append(title);
      svg.append(rect);
    }
  });
  svg.setAttribute("aria-label", `${reply.total} events ${label}`);
  const caption = document.createElement("figcaption");
  caption.textContent = `${reply.total} events ${label}: `;
  for (const [status, css, name] of STACK) {
    const span = document.createElement("span");
    span.className = css;
    span.textContent = `■ ${totals.get(status) ?? 0n} ${name} `;
    caption.append(span);
  }
  figure.append(svg, caption);
}
