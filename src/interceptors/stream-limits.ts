import { Code, type Interceptor } from "@connectrpc/connect";
import { kPrincipal } from "../auth/principal.js";
import { domainError, Reason } from "../errors.js";

export interface StreamLimits {
  /** Streams one credential may have open at once. */
  perCredential: number;
  /** Streams open at once, all credentials together. */
  total: number;
}

/**
 * Caps the server-streaming calls (Tail) open at once in this process, per credential and in all: each holds a
 * subscription, a buffer of up to TAIL_BUFFER_EVENTS events and a connection's stream for as long as the client
 * likes. A call over either cap is refused with RESOURCE_EXHAUSTED (`TAIL_STREAM_LIMIT`, metadata `scope` and
 * `limit`) before its handler runs. Runs after authentication, which names the credential. A slot is freed when
 * the call's signal aborts, which Connect does when a call ends in any way.
 */
export function streamLimitInterceptor(limits: StreamLimits): Interceptor {
  const open = new Map<string, number>();
  let total = 0;
  return (next) => async (req) => {
    if (req.method.methodKind !== "server_streaming") return next(req);
    const credential = req.contextValues.get(kPrincipal)?.credentialId ?? "";
    const mine = open.get(credential) ?? 0;
    if (mine >= limits.perCredential) {
      throw domainError(
        Code.ResourceExhausted,
        Reason.TailStreamLimit,
        `this credential already has ${mine} streams open, the most allowed (TAIL_STREAMS_PER_CREDENTIAL); close one first`,
        { scope: "credential", limit: String(limits.perCredential) },
      );
    }
    if (total >= limits.total) {
      throw domainError(
        Code.ResourceExhausted,
        Reason.TailStreamLimit,
        `the server already serves ${total} streams, the most it allows (TAIL_STREAMS_TOTAL); retry later`,
        { scope: "server", limit: String(limits.total) },
      );
    }
    open.set(credential, mine + 1);
    total += 1;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      total -= 1;
      const left = (open.get(credential) ?? 1) - 1;
      if (left === 0) open.delete(credential);
      else open.set(credential, left);
    };
    if (req.signal.aborted) release();
    else req.signal.addEventListener("abort", release, { once: true });
    try {
      return await next(req);
    } catch (error) {
      release();
      throw error;
    }
  };
}
