import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AdminService, Role } from "../../gen/audit/v1/admin_service_pb.js";
import { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

declare const __AUDIT_API_URL__: string;

/** The service: the origin that served this page, unless the build named another (AUDIT_CONSOLE_API_URL). */
export const serviceUrl = __AUDIT_API_URL__ || location.origin;

const TOKEN_KEY = "audit-console.token";

/** The token lives in this tab's sessionStorage only: never in the URL, never in localStorage. */
export const session = {
  get token(): string {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  },
  set(token: string) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

const bearer: Interceptor = (next) => (req) => {
  if (session.token) req.header.set("authorization", `Bearer ${session.token}`);
  return next(req);
};

/** gRPC-web only, binary: the protocol this console exists to prove in a browser. */
const transport = createGrpcWebTransport({ baseUrl: serviceUrl, interceptors: [bearer] });
export const audit = createClient(AuditService, transport);
export const admin = createClient(AdminService, transport);
export { Role };

/** What went wrong, as the person at the screen can act on it. */
export interface Problem {
  kind: "session" | "role" | "unreachable" | "slow" | "invalid" | "other";
  message: string;
  /** For "unreachable" and "slow": when to try again. */
  retryMs?: number;
}

export function problemOf(error: unknown): Problem {
  const e = ConnectError.from(error);
  const reason = e.findDetails(ErrorInfoSchema)[0]?.reason ?? "";
  const delay = e.findDetails(RetryInfoSchema)[0]?.retryDelay;
  switch (e.code) {
    case Code.Unauthenticated:
      return { kind: "session", message: `Your session has ended (${e.rawMessage}). Sign in again.` };
    case Code.PermissionDenied:
      return {
        kind: "role",
        message:
          reason === "NO_ROLE"
            ? "Your credential has no role. Ask an admin of your tenant to grant it the reader role."
            : `Not allowed: ${e.rawMessage}.${/needs the (\w+) role/.test(e.rawMessage) ? " Ask an admin of your tenant to grant it." : ""}`,
      };
    case Code.ResourceExhausted:
      return {
        kind: "slow",
        message: `The service is asking you to slow down (${e.rawMessage}). Trying again shortly.`,
        retryMs: delay ? Number(delay.seconds) * 1000 + delay.nanos / 1e6 : 5000,
      };
    case Code.Unavailable:
    case Code.Unknown:
    case Code.DeadlineExceeded:
      return {
        kind: "unreachable",
        message: `Cannot reach the audit service at ${serviceUrl} (${e.rawMessage}). Retrying…`,
        retryMs: 2000,
      };
    case Code.InvalidArgument:
      return { kind: "invalid", message: `The service refused the filters: ${e.rawMessage}` };
    default:
      return { kind: "other", message: `${Code[e.code]}: ${e.rawMessage}` };
  }
}

export function reasonOf(error: unknown): string {
  return ConnectError.from(error).findDetails(ErrorInfoSchema)[0]?.reason ?? "";
}

export function isAbort(error: unknown): boolean {
  return ConnectError.from(error).code === Code.Canceled;
}
