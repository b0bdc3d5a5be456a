import type { Clock } from "../clock.js";
import { Code, DomainError, Reason } from "../errors.js";
import { type AppendResult, type EventStore, type GroupItem, type ItemOutcome, sqlState } from "./event-store.js";
import { noObserver, type StoreObserver } from "./observer.js";

export interface GroupCommitOptions {
  /** Most events one flush writes. */
  maxBatch: number;
  /** Most events waiting for a flush; beyond it appends are refused with RESOURCE_EXHAUSTED. */
  queueLimit: number;
  /**
   * Most flushes in flight. A flush mostly waits (round trips, the commit's WAL flush), so a second one, of other
   * tenants, overlaps that wait. A tenant is in one flush at a time in this process; across processes the tenant
   * locks order them: a tenant's events in two flushes commit one flush after the other.
   */
  flushes: number;
  observer?: StoreObserver;
}

interface Pending extends GroupItem {
  key: string;
  resolve(result: AppendResult): void;
  reject(error: unknown): void;
}

/**
 * Coalesces concurrent single-event appends, of any tenants, into one transaction per flush. A flush starts as soon
 * as the event loop has no more I/O to hand over (setImmediate), so an idle service adds no latency; while the
 * flushes are in flight the next batch gathers, so the batch size follows the load. Each caller's promise settles
 * after the commit that stored (or refused) its own event, with its own result or error.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private running = 0;
  /** Tenants with events in a flush in flight. */
  private readonly flushing = new Set<string>();
  private drained: (() => void)[] = [];
  private readonly observer: StoreObserver;

  constructor(
    private readonly store: Pick<EventStore, "appendEach">,
    /** Read once per flush, with the tenants locked: every event of a flush is received at that instant. */
    private readonly clock: Clock,
    private readonly options: GroupCommitOptions,
  ) {
    this.observer = options.observer ?? noObserver;
  }

  /** Events waiting for a flush (not those being written). */
  get queued(): number {
    return this.queue.length;
  }

  append(tenant: string, event: GroupItem["event"]): Promise<AppendResult> {
    if (this.queue.length >= this.options.queueLimit) {
      return Promise.reject(
        new DomainError(
          Code.ResourceExhausted,
          Reason.IngestQueueFull,
          `the ingest queue is full (${this.options.queueLimit} events waiting); retry with backoff`,
        ),
      );
    }
    return this.observer.operation(
      "group_commit",
      1,
      () =>
        new Promise((resolve, reject) => {
          // Events without an id get a fresh one in the store, so they never collide.
          const key = event.id === "" ? "" : `${tenant}\u0000${event.id}`;
          this.queue.push({ tenant, event, key, resolve, reject });
          if (this.running < this.options.flushes) {
            this.running++;
            setImmediate(() => void this.run());
          }
        }),
    );
  }

  /** Resolves once every event handed in so far has been flushed. */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private async run(): Promise<void> {
    try {
      for (let batch = this.take(); batch.length > 0; batch = this.take()) {
        const tenants = new Set(batch.map((item) => item.tenant));
        for (const tenant of tenants) this.flushing.add(tenant);
        try {
          await this.flush(batch);
        } finally {
          for (const tenant of tenants) this.flushing.delete(tenant);
        }
      }
    } finally {
      this.running--;
      if (this.running === 0) for (const resolve of this.drained.splice(0)) resolve();
    }
  }

  /**
   * The next batch, oldest first, of tenants no other flush is writing: a second flush of such a tenant would only
   * wait at its lock, holding a connection and halving the batches. The flush writing it takes them next. An event
   * whose tenant and id are already in the batch waits for a later flush, which sees the first one committed and
   * answers it as a replay or a conflict.
   */
  private take(): Pending[] {
    const batch: Pending[] = [];
    const keys = new Set<string>();
    const rest: Pending[] = [];
    for (const item of this.queue) {
      if (
        batch.length >= this.options.maxBatch ||
        this.flushing.has(item.tenant) ||
        (item.key !== "" && keys.has(item.key))
      ) {
        rest.push(item);
        continue;
      }
      if (item.key !== "") keys.add(item.key);
      batch.push(item);
    }
    this.queue = rest;
    return batch;
  }

  /**
   * Writes a batch. If the statement fails because of one event's data, the batch is split in halves and each is
   * written on its own, until the failing event is alone and only its caller gets the error.
   */
  private async flush(batch: Pending[]): Promise<void> {
    let outcomes: ItemOutcome[];
    this.observer.flushed(batch.length);
    try {
      outcomes = await this.store.appendEach(batch, this.clock);
    } catch (error) {
      if (batch.length > 1 && isRowError(error)) {
        const half = Math.ceil(batch.length / 2);
        await this.flush(batch.slice(0, half));
        await this.flush(batch.slice(half));
      } else {
        for (const item of batch) item.reject(error);
      }
      return;
    }
    for (const [index, item] of batch.entries()) {
      const outcome = outcomes[index];
      if (outcome?.kind === "stored" || outcome?.kind === "replayed") item.resolve({ ok: true, events: [outcome.row] });
      else if (outcome?.kind === "conflict") item.resolve({ ok: false, conflictIndex: 0, id: outcome.id });
      else item.reject(new Error(`group commit got no outcome for event ${index} of ${batch.length}`));
    }
  }
}

/**
 * Data exceptions (22) and integrity violations (23) come from some row's content, not from the database's state;
 * data_corrupted (XX001) from one tenant's verifiable-log tree disagreeing with its events. Either way the other
 * events of the flush are not at fault.
 */
function isRowError(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (state.startsWith("22") || state.startsWith("23") || state === "XX001");
}
