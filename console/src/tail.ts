import type { AuditEvent } from "../../gen/audit/v1/event_pb.js";
import { audit, isAbort, problemOf, reasonOf } from "./api.js";
import type { Filter } from "./query.js";

export interface TailCallbacks {
  event(event: AuditEvent): void;
  status(text: string): void;
  /** The credential stopped working: the tail has ended. */
  signedOut(message: string): void;
}

/**
 * Follows Tail over gRPC-web server streaming from `afterSequence`, and after any interruption (a dropped connection,
 * the service restarting, the stream's longest life, being cut off as too slow) resumes after the last sequence it
 * delivered: Tail replays in sequence order, so nothing is missed and nothing repeats. Returns a stop function.
 */
export function followTail(tenant: string, filter: Filter, afterSequence: bigint, on: TailCallbacks): () => void {
  const stop = new AbortController();
  let last = afterSequence;
  let failures = 0;
  (async () => {
    while (!stop.signal.aborted) {
      let note = "";
      try {
        on.status(failures === 0 ? "Live: following new events" : `Live again: resumed after sequence ${last}`);
        for await (const { event } of audit.tail({ tenant, filter, afterSequence: last }, { signal: stop.signal })) {
          if (!event || event.sequence <= last) continue;
          last = event.sequence;
          failures = 0;
          on.event(event);
        }
        note = "The stream ended";
      } catch (error) {
        if (stop.signal.aborted || isAbort(error)) return;
        const problem = problemOf(error);
        if (problem.kind === "session" || problem.kind === "role") return on.signedOut(problem.message);
        note =
          reasonOf(error) === "TAIL_TOO_SLOW"
            ? "The service cut the live tail off for falling too far behind (this page read too slowly)"
            : problem.kind === "unreachable"
              ? "The connection to the service was lost"
              : problem.message;
      }
      failures += 1;
      const waitMs = Math.min(500 * 2 ** (failures - 1), 10_000);
      on.status(`${note}; resuming after sequence ${last} in ${Math.round(waitMs / 100) / 10} s…`);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  })();
  return () => stop.abort();
}
