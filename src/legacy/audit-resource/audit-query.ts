import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { type ListRequestSchema, Order } from "../../../gen/audit/v1/audit_service_pb.js";
import { OutcomeStatus } from "../../../gen/audit/v1/event_pb.js";
import { utcMidnight } from "../../service/date-time.js";
import { limits } from "../../service/limits.js";

/** At most this many audits are returned, newest first; docs/legacy.md says so. */
export const RESULT_CAP = limits.pageSizeMax;

export const ACTIONS = ["LOGIN", "CREATE", "UPDATE", "DELETE"] as const;
const RESULT_CODES = { TRUE: OutcomeStatus.SUCCESS, FALSE: OutcomeStatus.FAILURE } as const;
const PARAMETERS = new Set(["action", "resultCode", "startDate", "stopDate", "userName"]);
const DAY = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/;

/** Core ListRequest fields in this API's parameter names. */
export const PARAMETER_NAMES = {
  start_time: "startDate",
  end_time: "stopDate",
  actions: "action",
  actor_name: "userName",
  outcome: "resultCode",
};

export interface QueryProblem {
  parameter: string;
  message: string;
}

type ListInit = MessageInitShape<typeof ListRequestSchema>;

/**
 * The List request for a query string. Empty values count as absent. startDate is the start of its UTC day;
 * stopDate includes its whole UTC day.
 */
export function readQuery(query: URLSearchParams): ListInit | QueryProblem {
  for (const name of new Set(query.keys())) {
    if (!PARAMETERS.has(name)) return { parameter: name, message: `${name} is not a parameter of GET /audit` };
    if (query.getAll(name).length > 1) return { parameter: name, message: `${name} is given more than once` };
  }
  const value = (name: string) => query.get(name) || undefined;
  const request: ListInit = { pageSize: RESULT_CAP, order: Order.NEWEST_FIRST, includeChildren: true };

  const action = value("action");
  if (action !== undefined) {
    if (!(ACTIONS as readonly string[]).includes(action)) {
      return { parameter: "action", message: `action must be one of ${ACTIONS.join(", ")}` };
    }
    request.actions = [action];
  }
  const resultCode = value("resultCode");
  if (resultCode !== undefined) {
    if (resultCode !== "TRUE" && resultCode !== "FALSE") {
      return { parameter: "resultCode", message: "resultCode must be TRUE or FALSE" };
    }
    request.outcome = RESULT_CODES[resultCode];
  }
  const start = day(value("startDate"), 0n);
  if (start === null) return dateProblem("startDate");
  const stop = day(value("stopDate"), 1n);
  if (stop === null) return dateProblem("stopDate");
  if (start !== undefined && stop !== undefined && stop <= start) {
    return { parameter: "stopDate", message: "stopDate must not be before startDate" };
  }
  if (start !== undefined) request.startTime = create(TimestampSchema, { seconds: start });
  if (stop !== undefined) request.endTime = create(TimestampSchema, { seconds: stop });
  const userName = value("userName");
  if (userName !== undefined) request.actorName = userName;
  return request;
}

/** Seconds at the start of the day `plusDays` after an mm/dd/yyyy date; null when the text is no such date. */
function day(text: string | undefined, plusDays: bigint): bigint | undefined | null {
  if (text === undefined) return undefined;
  const m = DAY.exec(text);
  const midnight = m ? utcMidnight(Number(m[3]), Number(m[1]), Number(m[2])) : undefined;
  return midnight === undefined ? null : midnight + plusDays * 86_400n;
}

function dateProblem(parameter: string): QueryProblem {
  return { parameter, message: `${parameter} must be a date as mm/dd/yyyy, such as 12/01/2015` };
}
