import type { LegacyAdapter, LegacyDeps } from "./adapter.js";
import { auditResourceAdapter } from "./audit-resource/audit-resource-adapter.js";
import { axonizeAdapter } from "./axonize/axonize-adapter.js";
import { frontierAdapter } from "./frontier/index.js";
import { planoAuthAdapter } from "./planoauth/planoauth-adapter.js";
import { universalControllerAdapter } from "./universal-controller/index.js";

/**
 * Every legacy API this service reproduces, each in its own folder. `clientsFor` gives each API clients whose calls
 * carry its name (metrics and traces tell the routes apart); by default they all share `deps.clients`.
 */
export function legacyAdapters(
  deps: LegacyDeps,
  clientsFor: (api: string) => LegacyDeps["clients"] = () => deps.clients,
): LegacyAdapter[] {
  const as = (api: string): LegacyDeps => ({ ...deps, clients: clientsFor(api) });
  return [
    auditResourceAdapter(as("audit-resource")),
    axonizeAdapter(as("axonize")),
    frontierAdapter(as("frontier")),
    planoAuthAdapter(as("planoauth")),
    universalControllerAdapter(as("universal-controller")),
  ];
}
