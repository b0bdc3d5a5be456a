import type { DescService } from "@bufbuild/protobuf";
import type { FrontierService } from "../../gen/raystack/frontier/v1beta1/frontier_pb.js";

/** Where @raystack/proton exports Frontier's stubs; a variable, so tsc does not follow it (see below). */
const PROTON_FRONTIER: string = "@raystack/proton/frontier";

/**
 * @raystack/proton's protobuf-es descriptor of raystack.frontier.v1beta1.FrontierService: what Frontier's own clients
 * call with (its connect-query hooks are built on these methods). The package ships TypeScript sources written for
 * bundlers (extensionless imports, no "type": "module") that this project's compiler settings reject, so tsc is not
 * pointed at them: vitest compiles them at run time. The descriptor is typed as this repository's declaration of the
 * same contract, for the three RPCs the tests call.
 */
export async function protonFrontierService(): Promise<typeof FrontierService> {
  const proton = (await import(PROTON_FRONTIER)) as {
    FrontierServiceQueries: { createOrganizationAuditLogs: { parent: DescService } };
  };
  return proton.FrontierServiceQueries.createOrganizationAuditLogs.parent as typeof FrontierService;
}
