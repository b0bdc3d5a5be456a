/** The service's source of "now", injected so tests can move time. */
export interface Clock {
  /** Microseconds since the epoch. */
  nowMicros(): bigint;
}

export const systemClock: Clock = {
  nowMicros: () => BigInt(Date.now()) * 1000n,
};
