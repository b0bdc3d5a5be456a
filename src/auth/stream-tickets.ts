import { Code, createContextKey } from "@connectrpc/connect";
import type { Clock } from "../clock.js";
import { domainError, Reason } from "../errors.js";
import type { Principal } from "./principal.js";
import { generateToken, hashToken } from "./secrets.js";

/** How long a stream ticket may wait to be used. */
export const STREAM_TICKET_TTL_MICROS = 60_000_000n;
/** Most unused tickets one process holds; issuing more is RESOURCE_EXHAUSTED until some are used or expire. */
const MAX_OUTSTANDING = 10_000;

/** A stream ticket given in place of an Authorization header; only the REST transcoder's SSE Tail route sets it. */
export const kStreamTicket = createContextKey<string | undefined>(undefined, {
  description: "the ?ticket= of a Server-Sent Events stream",
});

interface Issued {
  principal: Principal;
  tenant: string;
  expiresAt: bigint;
}

/**
 * Short-lived, single-use tickets that authenticate one Server-Sent Events stream for a browser, whose EventSource
 * cannot send an Authorization header, without putting a long-lived secret in a URL. Each is bound to the caller's
 * principal and one tenant, lives 60 s, and is spent by its first use. Kept in this process's memory, by hash:
 * a ticket is valid only on the instance that issued it (docs/publish-and-tail.md).
 */
export class StreamTickets {
  private readonly issued = new Map<string, Issued>();

  constructor(private readonly clock: Clock) {}

  issue(principal: Principal, tenant: string): { ticket: string; expiresAtMicros: bigint } {
    const now = this.clock.nowMicros();
    if (this.issued.size >= MAX_OUTSTANDING) this.sweep(now);
    if (this.issued.size >= MAX_OUTSTANDING) {
      throw domainError(
        Code.ResourceExhausted,
        Reason.StreamTicketLimit,
        `more than ${MAX_OUTSTANDING} stream tickets are waiting to be used; retry in a minute`,
      );
    }
    const ticket = generateToken("st_");
    const expiresAt = now + STREAM_TICKET_TTL_MICROS;
    this.issued.set(hashToken(ticket).toString("base64"), { principal, tenant, expiresAt });
    return { ticket, expiresAtMicros: expiresAt };
  }

  /** The ticket's principal and tenant, spending it; UNAUTHENTICATED when it is unknown, spent or expired. */
  redeem(ticket: string): { principal: Principal; tenant: string } {
    const key = hashToken(ticket).toString("base64");
    const found = this.issued.get(key);
    this.issued.delete(key);
    if (!found || found.expiresAt <= this.clock.nowMicros()) {
      throw domainError(
        Code.Unauthenticated,
        Reason.InvalidStreamTicket,
        "the stream ticket is unknown, used or expired (each is valid once, for 60 s, on the instance that issued it); create another with CreateStreamTicket",
      );
    }
    return found;
  }

  private sweep(now: bigint): void {
    for (const [key, { expiresAt }] of this.issued) if (expiresAt <= now) this.issued.delete(key);
  }
}
