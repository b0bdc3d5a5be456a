import { create } from "@bufbuild/protobuf";
import {
  type CountEventsRequest,
  type CountEventsResponse,
  CountEventsResponseSchema,
  EventFilterSchema,
} from "../../gen/audit/v1/audit_service_pb.js";
import type { Clock } from "../clock.js";
import { type FieldViolation, invalidArgument, Reason } from "../errors.js";
import type { EventStore } from "../store/event-store.js";
import { microsToIso, microsToTimestamp, pgTimestampMicros } from "../store/time.js";
import { readFilter } from "./filter-input.js";
import { limits } from "./limits.js";

const MICROS = 1_000_000n;

/**
 * AuditService.CountEvents: List's filter, counted per time bucket and outcome. The range must be bounded (start_time
 * given, end_time or now) so that one call reads a bounded number of buckets, each listed even when empty, so a chart
 * needs no gap-filling of its own.
 */
export function countEventsHandler(store: Pick<EventStore, "count">, clock: Clock) {
  return async (req: CountEventsRequest): Promise<CountEventsResponse> => {
    const violations: FieldViolation[] = [];
    const filter = readFilter(req.filter ?? create(EventFilterSchema), "filter.", violations);
    const width = req.bucketWidth;
    let widthSeconds = 0n;
    if (!width) {
      violations.push({ field: "bucket_width", description: "is required", reason: Reason.MissingField });
    } else if (width.nanos !== 0 || width.seconds < 1n || width.seconds > limits.bucketWidthMaxSeconds) {
      violations.push({
        field: "bucket_width",
        description: `must be whole seconds from 1s to ${limits.bucketWidthMaxSeconds}s (366 days)`,
      });
    } else widthSeconds = width.seconds;
    const now = clock.nowMicros();
    if (!req.filter?.startTime) {
      violations.push({
        field: "filter.start_time",
        description: "is required: counting needs a bounded time range",
        reason: Reason.MissingField,
      });
    }
    const end = filter.endTime ?? microsToIso(now);
    if (filter.startTime && !filter.endTime && filter.startTime >= end) {
      violations.push({ field: "filter.start_time", description: "must be before now when end_time is not given" });
    }
    if (violations.length > 0 || !filter.startTime) throw invalidArgument(violations);

    const widthMicros = widthSeconds * MICROS;
    const startMicros = pgTimestampMicros(filter.startTime);
    const endMicros = pgTimestampMicros(end);
    const first = floorTo(startMicros, widthMicros);
    const buckets = (endMicros - first + widthMicros - 1n) / widthMicros;
    if (buckets > BigInt(limits.countBuckets)) {
      throw invalidArgument([
        {
          field: "bucket_width",
          description: `gives ${buckets} buckets between start_time and end_time, more than ${limits.countBuckets}: widen the buckets or narrow the range`,
        },
      ]);
    }

    const rows = await store.count({ ...filter, endTime: end, tenant: req.tenant, widthSeconds, nowMicros: now });
    const byBucket = new Map<bigint, { total: bigint; outcomes: { status: number; count: bigint }[] }>();
    let total = 0n;
    for (const row of rows) {
      const start = BigInt(row.bucketSeconds) * MICROS;
      const bucket = byBucket.get(start) ?? { total: 0n, outcomes: [] };
      byBucket.set(start, bucket);
      bucket.total += BigInt(row.count);
      bucket.outcomes.push({ status: row.outcomeStatus, count: BigInt(row.count) });
      total += BigInt(row.count);
    }
    return create(CountEventsResponseSchema, {
      total,
      buckets: Array.from({ length: Number(buckets) }, (_, i) => {
        const start = first + BigInt(i) * widthMicros;
        const bucket = byBucket.get(start);
        return { startTime: microsToTimestamp(start), total: bucket?.total ?? 0n, outcomes: bucket?.outcomes ?? [] };
      }),
    });
  };
}

/** The largest multiple of `step` at or below `micros`, for times before the epoch too. */
function floorTo(micros: bigint, step: bigint): bigint {
  const rest = micros % step;
  return rest < 0n ? micros - rest - step : micros - rest;
}
