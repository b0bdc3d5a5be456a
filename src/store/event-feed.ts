import type postgres from "postgres";
import type { Clock } from "../clock.js";
import { Code, DomainError, Reason } from "../errors.js";
import type { Logger } from "../logger.js";
import { type CompiledFilter, compileFilter, type EventFilter, filterMatches } from "./event-filter.js";
import type { EventRow, EventStore } from "./event-store.js";

/**
 * A subscription ended by its reader's signal: `reason` is the signal's, `lastSequence` the last event delivered, so
 * the caller can say how to resume in the terms of whoever aborted (the service: a credential, the longest life).
 */
export class FeedAborted extends Error {
  override readonly name = "FeedAborted";

  constructor(
    readonly reason: unknown,
    readonly lastSequence: number,
  ) {
    super("the subscription was aborted");
  }
}

/** Pauses between attempts to read new rows for live streams before giving up on them (about 4 s in all). */
const READ_RETRY_DELAYS_MS = [100, 250, 500, 1000, 2000];

/** The channel drizzle/0005_tail_notify.sql notifies on, with `{"tenant": …, "sequence": <highest stored>}`. */
export const FEED_CHANNEL = "audit_events";

export interface EventFeedOptions {
  sql: postgres.Sql;
  store: EventStore;
  clock: Clock;
  logger: Logger;
  /** Matching events a live subscriber may have waiting; one more and its stream ends with RESOURCE_EXHAUSTED. */
  bufferEvents: number;
  /** Rows per database read. */
  pageSize?: number;
}

export interface SubscribeOptions {
  tenant: string;
  filter: EventFilter;
  /** Replay committed events after this sequence first; absent: start at the newest committed event. */
  afterSequence?: number;
  signal: AbortSignal;
}

type Ending = "slow" | "interrupted" | "closed";

/** One Tail stream: where it is in its tenant's sequence, and the matching events it has not taken yet. */
class Subscriber {
  /** Highest sequence this subscriber is past: delivered, queued or skipped as not matching. */
  cursor: number;
  /** Sequence of the last event handed to the stream: what it resumes after. */
  delivered: number;
  live = false;
  ending: Ending | undefined;
  private queue: EventRow[] = [];
  private next = 0;
  private wake: (() => void) | undefined;

  constructor(
    readonly filter: CompiledFilter,
    private readonly limit: number,
    start: number,
  ) {
    this.cursor = start;
    this.delivered = start;
  }

  offer(row: EventRow, nowMicros: bigint): void {
    if (row.sequence <= this.cursor || this.ending) return;
    this.cursor = row.sequence;
    if (!filterMatches(this.filter, row, nowMicros)) return;
    if (this.queue.length - this.next >= this.limit) {
      this.end("slow");
      return;
    }
    this.queue.push(row);
    this.wake?.();
  }

  end(ending: Ending): void {
    this.ending ??= ending;
    this.queue = [];
    this.next = 0;
    this.wake?.();
  }

  /** The next queued event; waits for one. Throws when the stream must end. */
  async take(signal: AbortSignal): Promise<EventRow> {
    for (;;) {
      this.check(signal);
      const row = this.queue[this.next];
      if (row) {
        this.next += 1;
        // Drop the taken prefix now and then, rather than shifting the array on every take.
        if (this.next >= 1024 && this.next * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.next);
          this.next = 0;
        }
        return row;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake = undefined;
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /** The end of a stream whose events could not be read: where to resume is known, so the client can carry on. */
  interrupted(): DomainError {
    return new DomainError(
      Code.Unavailable,
      Reason.TailInterrupted,
      `reading new events failed; resume with after_sequence=${this.delivered}`,
      { lastSequence: String(this.delivered) },
    );
  }

  check(signal: AbortSignal): void {
    const resume = `; resume with after_sequence=${this.delivered}`;
    const metadata = { lastSequence: String(this.delivered) };
    if (signal.aborted) throw new FeedAborted(signal.reason, this.delivered);
    switch (this.ending) {
      case "slow":
        throw new DomainError(
          Code.ResourceExhausted,
          Reason.TailTooSlow,
          `the stream fell more than ${this.limit} events behind${resume}`,
          metadata,
        );
      case "interrupted":
        throw this.interrupted();
      case "closed":
        throw new DomainError(
          Code.Unavailable,
          Reason.TailInterrupted,
          `the server is shutting down${resume}`,
          metadata,
        );
    }
  }
}

/** What this process follows of one tenant: the highest sequence read so far, and who is watching. */
class TenantFeed {
  head = 0;
  initialised = false;
  reading = false;
  /** Another notification came while reading: read again when done. */
  again = false;
  readonly subscribers = new Set<Subscriber>();
  ready: Promise<void> = Promise.resolve();

  constructor(readonly tenant: string) {}
}

/**
 * The per-process fan-out behind Tail. One LISTEN (postgres.js keeps it on one dedicated connection) tells it which
 * tenant committed up to which sequence; for each tenant someone watches, it then reads the new rows once, in
 * sequence order, and offers them to every live subscriber of that tenant. Subscribers filter in memory with the
 * same compiled filter List renders as SQL. A subscriber first replays from the database up to the feed's head, then
 * turns live in the same tick, so it sees each sequence once and none is skipped.
 */
export class EventFeed {
  private readonly tenants = new Map<string, TenantFeed>();
  private readonly pageSize: number;
  private listening: postgres.ListenMeta | undefined;
  private closed = false;

  constructor(private readonly options: EventFeedOptions) {
    this.pageSize = options.pageSize ?? 500;
  }

  /** Tail streams open on this process (replaying or live). */
  get streams(): number {
    let count = 0;
    for (const feed of this.tenants.values()) count += feed.subscribers.size;
    return count;
  }

  async start(): Promise<void> {
    this.listening = await this.options.sql.listen(
      FEED_CHANNEL,
      (payload) => this.notified(payload),
      // Also called each time postgres.js re-establishes the LISTEN after losing its connection: notifications sent
      // meanwhile are lost, so every followed tenant reads whatever it missed, by sequence.
      () => {
        for (const feed of this.tenants.values()) if (feed.initialised) void this.read(feed);
      },
    );
  }

  /** Ends every stream with UNAVAILABLE (telling it where to resume) and stops listening. */
  async close(): Promise<void> {
    this.closed = true;
    for (const feed of this.tenants.values()) for (const sub of feed.subscribers) sub.end("closed");
    await this.listening?.unlisten().catch(() => {});
  }

  async *subscribe(options: SubscribeOptions): AsyncGenerator<EventRow> {
    const { tenant, signal } = options;
    const { store, clock } = this.options;
    if (this.closed) throw new DomainError(Code.Unavailable, Reason.TailInterrupted, "the server is shutting down");
    const sub = new Subscriber(compileFilter(options.filter), this.options.bufferEvents, options.afterSequence ?? 0);
    // Registered before any await, so the tenant's feed cannot be dropped while this stream starts.
    const feed = this.attach(tenant, sub);
    try {
      await feed.ready;
      if (options.afterSequence === undefined) sub.cursor = sub.delivered = feed.head;
      // Replay from the database up to the feed's head; the head may move on meanwhile, so chase it.
      while (sub.cursor < feed.head) {
        const through = feed.head;
        // Past feed.ready the stream has its starting point: a failed read ends it as a resumable interruption, as
        // in the live phase. Before it, the call fails as any call that needs the database does.
        const rows = await store
          .range({
            tenant,
            afterSequence: sub.cursor,
            throughSequence: through,
            filter: sub.filter,
            nowMicros: clock.nowMicros(),
            limit: this.pageSize,
          })
          .catch((error: unknown) => {
            this.options.logger.warn({ err: error, tenant }, "reading past events for Tail failed");
            throw sub.interrupted();
          });
        sub.check(signal);
        const last = rows[rows.length - 1];
        sub.cursor = rows.length === this.pageSize && last ? last.sequence : through;
        for (const row of rows) {
          sub.delivered = row.sequence;
          yield row;
          sub.check(signal);
        }
      }
      // Caught up, in the same tick as the check above: the feed offers every sequence after the head from now on.
      sub.live = true;
      for (;;) {
        const row = await sub.take(signal);
        sub.delivered = row.sequence;
        yield row;
      }
    } finally {
      feed.subscribers.delete(sub);
      if (feed.subscribers.size === 0 && this.tenants.get(tenant) === feed) this.tenants.delete(tenant);
    }
  }

  /** The tenant's feed, created (reading its head) for its first subscriber. */
  private attach(tenant: string, sub: Subscriber): TenantFeed {
    let feed = this.tenants.get(tenant);
    if (!feed) {
      const created = new TenantFeed(tenant);
      created.ready = this.options.store.lastSequence(tenant).then(
        (last) => {
          created.head = last;
          created.initialised = true;
          // A commit may have been notified while the head was being read, and ignored: look once more.
          void this.read(created);
        },
        (error) => {
          if (this.tenants.get(tenant) === created) this.tenants.delete(tenant);
          throw error;
        },
      );
      this.tenants.set(tenant, created);
      feed = created;
    }
    feed.subscribers.add(sub);
    return feed;
  }

  private notified(payload: string): void {
    let note: { tenant?: unknown; sequence?: unknown };
    try {
      note = JSON.parse(payload);
    } catch {
      this.options.logger.warn({ channel: FEED_CHANNEL }, "ignored a malformed notification");
      return;
    }
    const feed = typeof note.tenant === "string" ? this.tenants.get(note.tenant) : undefined;
    if (feed?.initialised && typeof note.sequence === "number" && note.sequence > feed.head) void this.read(feed);
  }

  /**
   * Reads the tenant's rows after the head, page by page, and offers each to the live subscribers. A failed read is
   * retried for a few seconds (a connection lost with the LISTEN one is often not yet replaced when the LISTEN is
   * back); only then are the live subscribers ended, since they cannot be kept gapless without those rows.
   */
  private async read(feed: TenantFeed): Promise<void> {
    if (feed.reading) {
      feed.again = true;
      return;
    }
    feed.reading = true;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.readNew(feed);
          return;
        } catch (error) {
          const delay = READ_RETRY_DELAYS_MS[attempt];
          if (delay === undefined || this.closed) {
            this.options.logger.warn({ err: error, tenant: feed.tenant }, "reading new events for Tail failed");
            for (const sub of feed.subscribers) if (sub.live) sub.end("interrupted");
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, delay));
        }
      }
    } finally {
      feed.reading = false;
    }
  }

  private async readNew(feed: TenantFeed): Promise<void> {
    do {
      feed.again = false;
      let rows: EventRow[];
      do {
        rows = await this.options.store.range({
          tenant: feed.tenant,
          afterSequence: feed.head,
          nowMicros: 0n,
          limit: this.pageSize,
        });
        if (this.tenants.get(feed.tenant) !== feed) return;
        const now = this.options.clock.nowMicros();
        for (const row of rows) {
          for (const sub of feed.subscribers) if (sub.live) sub.offer(row, now);
          feed.head = row.sequence;
        }
      } while (rows.length === this.pageSize);
    } while (feed.again);
  }
}
