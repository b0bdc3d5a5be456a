/** The store's database operations, as telemetry names them. */
export type StoreOperation = "append" | "list" | "count" | "range" | "group_commit";

/**
 * What the store tells whoever observes it (metrics, tracing), without knowing who that is: the layers above
 * implement it, the store only calls it. Every method must be cheap and must not throw.
 */
export interface StoreObserver {
  /** Runs one operation: `events` is how many events it writes (0 for reads). */
  operation<T>(name: StoreOperation, events: number, run: () => Promise<T>): Promise<T>;
  /** Events newly stored for a tenant (not idempotent replays), once their transaction has committed. */
  stored(tenant: string, count: number): void;
  /** The number of events one group commit flush wrote in one transaction. */
  flushed(events: number): void;
}

export const noObserver: StoreObserver = {
  operation: (_name, _events, run) => run(),
  stored() {},
  flushed() {},
};
