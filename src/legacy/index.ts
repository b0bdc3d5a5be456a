import type { Invoker } from "../server/invoker.js";
import { type LegacyAdapter, type LegacyDeps, legacyCall } from "./adapter.js";
import { auditResourceAdapter } from "./audit-resource/audit-resource-adapter.js";
import { axonizeAdapter } from "./axonize/axonize-adapter.js";
import { planoAuthAdapter } from "./planoauth/planoauth-adapter.js";
import { universalControllerAdapter } from "./universal-controller/index.js";

/** Every legacy API this service reproduces, each in its own folder, each calling the RPCs under its own name. */
export function legacyAdapters(invoker: Invoker, deps: Omit<LegacyDeps, "call">): LegacyAdapter[] {
  const as = (api: string): LegacyDeps => ({ ...deps, call: legacyCall(invoker, api) });
  return [
    auditResourceAdapter(as("audit-resource")),
    axonizeAdapter(as("axonize")),
    planoAuthAdapter(as("planoauth")),
    universalControllerAdapter(as("universal-controller")),
  ];
}
