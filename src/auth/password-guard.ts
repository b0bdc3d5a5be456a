import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ERROR_DOMAIN, Reason } from "../errors.js";

export interface PasswordGuardOptions {
  /** Failed checks a user (tenant/username) may have before each further attempt must wait; 0: no limit. */
  failuresPerUser: number;
  /** The same for a client address, across every user name it tries; 0: no limit. */
  failuresPerAddress: number;
  /** The longest wait; the first is 1 s, doubling with each further failure. A quiet key is forgotten after it. */
  maxDelayMs: number;
  /** Password hashes computed at once (each takes a libuv thread for about 50–200 ms). */
  concurrency: number;
  /** Checks waiting for a slot; one more is refused at once with RESOURCE_EXHAUSTED. */
  queue: number;
}

const FIRST_DELAY_MS = 1000;
/** Keys remembered per kind; past it the oldest are forgotten (an address's own count still holds). */
const MAX_KEYS = 100_000;

interface Failures {
  count: number;
  /** No attempt is checked before this time (ms since the epoch). */
  until: number;
  last: number;
}

/**
 * Guards password checks (Login, HTTP Basic): slows down repeated failures per user and per client address, and
 * bounds the scrypt work running at once. Both answer RESOURCE_EXHAUSTED with a google.rpc.RetryInfo, without
 * computing a hash, so a flood of guesses costs the service next to nothing. State is per process (docs/auth.md).
 */
export class PasswordGuard {
  private readonly users = new Map<string, Failures>();
  private readonly addresses = new Map<string, Failures>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly options: PasswordGuardOptions,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws when the user or the address must still wait. */
  admit(user: string, address: string | undefined): void {
    const now = this.now();
    const wait = Math.max(
      this.waitFor(this.users, user, now),
      address === undefined ? 0 : this.waitFor(this.addresses, address, now),
    );
    if (wait > 0) {
      throw retryLater(
        Reason.PasswordAttemptsThrottled,
        `too many failed password checks for this user or from this address; retry in ${Math.ceil(wait / 1000)} s`,
        wait,
      );
    }
  }

  failed(user: string, address: string | undefined): void {
    const now = this.now();
    this.count(this.users, user, this.options.failuresPerUser, now);
    if (address !== undefined) this.count(this.addresses, address, this.options.failuresPerAddress, now);
  }

  /** A right password clears the user's failures (not the address's: a caller could mix in its own account). */
  succeeded(user: string): void {
    this.users.delete(user);
  }

  /** Runs a password hash when a slot is free, waiting in a bounded queue; refuses at once when that is full. */
  async hashing<T>(compute: () => Promise<T>): Promise<T> {
    if (this.running >= this.options.concurrency) {
      if (this.waiting.length >= this.options.queue) {
        throw retryLater(Reason.PasswordChecksBusy, "too many password checks are running; retry shortly", 1000);
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await compute();
    } finally {
      // The slot passes straight to the next waiter, if any.
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }

  private waitFor(map: Map<string, Failures>, key: string, now: number): number {
    const entry = map.get(key);
    if (!entry) return 0;
    if (now - entry.last > this.options.maxDelayMs && now >= entry.until) {
      map.delete(key);
      return 0;
    }
    return Math.max(0, entry.until - now);
  }

  private count(map: Map<string, Failures>, key: string, allowed: number, now: number): void {
    if (allowed === 0) return;
    let entry = map.get(key);
    if (!entry || now - entry.last > this.options.maxDelayMs) {
      entry = { count: 0, until: 0, last: now };
      map.delete(key);
      if (map.size >= MAX_KEYS) map.delete(map.keys().next().value as string);
      map.set(key, entry);
    }
    entry.count += 1;
    entry.last = now;
    if (entry.count >= allowed) {
      const doublings = Math.min(entry.count - allowed, 30);
      entry.until = now + Math.min(FIRST_DELAY_MS * 2 ** doublings, this.options.maxDelayMs);
    }
  }
}

/** RESOURCE_EXHAUSTED with a reason, `retryAfterMs` metadata and a google.rpc.RetryInfo. */
function retryLater(reason: string, message: string, retryAfterMs: number): ConnectError {
  return new ConnectError(message, Code.ResourceExhausted, undefined, [
    {
      desc: ErrorInfoSchema,
      value: { reason, domain: ERROR_DOMAIN, metadata: { retryAfterMs: String(retryAfterMs) } },
    },
    { desc: RetryInfoSchema, value: { retryDelay: durationFromMs(retryAfterMs) } },
  ]);
}
