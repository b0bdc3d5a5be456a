import type { LegacyAdapter, LegacyDeps } from "./adapter.js";
import { frontierAdapter } from "./frontier/index.js";
import { universalControllerAdapter } from "./universal-controller/index.js";

/** Every legacy API this service reproduces, each in its own folder. */
export function legacyAdapters(deps: LegacyDeps): LegacyAdapter[] {
  return [frontierAdapter(deps), universalControllerAdapter(deps)];
}
