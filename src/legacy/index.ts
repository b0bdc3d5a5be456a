import type { LegacyAdapter, LegacyDeps } from "./adapter.js";
import { frontierAdapter } from "./frontier/index.js";

/** Every legacy API this service reproduces, each in its own folder. */
export function legacyAdapters(deps: LegacyDeps): LegacyAdapter[] {
  return [frontierAdapter(deps)];
}
