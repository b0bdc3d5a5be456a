import type { LegacyAdapter, LegacyDeps } from "./adapter.js";

/** Every legacy API this service reproduces, each in its own folder. */
export function legacyAdapters(_deps: LegacyDeps): LegacyAdapter[] {
  return [];
}
