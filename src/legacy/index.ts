import type { LegacyAdapter, LegacyDeps } from "./adapter.js";
import { auditResourceAdapter } from "./audit-resource/audit-resource-adapter.js";
import { axonizeAdapter } from "./axonize/axonize-adapter.js";
import { planoAuthAdapter } from "./planoauth/planoauth-adapter.js";
import { universalControllerAdapter } from "./universal-controller/index.js";

/** Every legacy API this service reproduces, each in its own folder. */
export function legacyAdapters(deps: LegacyDeps): LegacyAdapter[] {
  return [auditResourceAdapter(deps), axonizeAdapter(deps), planoAuthAdapter(deps), universalControllerAdapter(deps)];
}
