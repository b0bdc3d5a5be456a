import { Code, type ServiceImpl } from "@connectrpc/connect";
import type { AuditService } from "../../gen/audit/v1/audit_service_pb.js";
import type { GetConsistencyProofRequest, GetInclusionProofRequest } from "../../gen/audit/v1/verifiable_log_pb.js";
import type { Clock } from "../clock.js";
import { domainError, invalidArgument, Reason } from "../errors.js";
import type { Logger } from "../logger.js";
import { rowToEvent } from "../service/event-output.js";
import type { EventStore } from "../store/event-store.js";
import { microsToIso } from "../store/time.js";
import { consistencyProof, inclusionProof, type PerfectHashes, rootHash } from "./merkle.js";
import { checkpointText, type NoteSigner } from "./note.js";
import { tileHashes, tilesRead } from "./tiles.js";
import type { TreeLog } from "./tree-log.js";

type LogMethods = "getCheckpoint" | "getInclusionProof" | "getConsistencyProof";

export interface Checkpoint {
  note: string;
  origin: string;
  size: number;
  root: Buffer;
}

/**
 * Signs and serves checkpoints: one per tenant whenever its tree has grown and the interval has passed (`start`), and
 * one on request (GetCheckpoint with `fresh`). Every instance may sign; the same key signs the same size identically,
 * and log_checkpoints keeps one note per size.
 */
export class Checkpoints {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly log: TreeLog,
    private readonly signer: NoteSigner,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** `<key name>/<tenant>`: names the service's log (the signing key's name) and the tenant. */
  origin(tenant: string): string {
    return `${this.signer.name}/${tenant}`;
  }

  get verifierKey(): string {
    return this.signer.verifierKey;
  }

  async sign(tenant: string): Promise<Checkpoint> {
    const { size, tiles } = await this.log.snapshot(tenant, []);
    const root = rootHash(tileHashes(tiles), size);
    const origin = this.origin(tenant);
    const note = this.signer.sign(checkpointText(origin, size, root));
    await this.log.saveCheckpoint(tenant, size, note, microsToIso(this.clock.nowMicros()));
    return { note, origin, size, root };
  }

  /** The latest checkpoint signed, or a new one when there is none yet or `fresh` asks for it. */
  async latest(tenant: string, fresh: boolean): Promise<Checkpoint> {
    const stored = fresh ? undefined : await this.log.latestCheckpoint(tenant);
    if (!stored) return this.sign(tenant);
    const [origin = "", , root = ""] = stored.note.split("\n");
    return { note: stored.note, origin, size: stored.size, root: Buffer.from(root, "base64") };
  }

  /** Signs, every `intervalMs`, a checkpoint for each tenant whose tree has grown since its last one. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.running = this.running
        .then(() => this.signGrown())
        .catch((err) => {
          this.logger.error({ err }, "signing checkpoints failed; retrying at the next interval");
        });
    }, intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async signGrown(): Promise<void> {
    for (;;) {
      const tenants = await this.log.unsigned(100);
      for (const tenant of tenants) await this.sign(tenant);
      if (tenants.length < 100) return;
    }
  }
}

export interface LogServiceDeps {
  log: TreeLog;
  checkpoints: Checkpoints;
  store: EventStore;
}

/** GetCheckpoint, GetInclusionProof and GetConsistencyProof of AuditService. */
export function createLogService(deps: LogServiceDeps | undefined): Pick<ServiceImpl<typeof AuditService>, LogMethods> {
  const off = () =>
    domainError(
      Code.FailedPrecondition,
      Reason.VerifiableLogOff,
      "this instance runs with VERIFIABLE_LOG=false: it keeps no verifiable log",
    );
  if (!deps) {
    return {
      getCheckpoint: () => Promise.reject(off()),
      getInclusionProof: () => Promise.reject(off()),
      getConsistencyProof: () => Promise.reject(off()),
    };
  }
  const { log, checkpoints, store } = deps;

  /** Runs a proof over the tiles it reads, fetched in one statement, after checking the tree reaches `size`. */
  async function prove<T>(tenant: string, size: number, field: string, run: (perfect: PerfectHashes) => T) {
    const snapshot = await log.snapshot(tenant, tilesRead(run));
    if (size > snapshot.size) {
      throw domainError(
        Code.OutOfRange,
        Reason.TreeSizeOutOfRange,
        `${field}: ${size} is beyond the tree, which holds ${snapshot.size} events`,
        { field, treeSize: String(snapshot.size) },
      );
    }
    return run(tileHashes(snapshot.tiles));
  }

  /** A size field, checked before anything is read. */
  function checkSize(value: bigint, field: string): void {
    if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw invalidArgument([{ field, description: "must be a tree size, zero or more" }]);
    }
  }

  /** A checked size field: 0 means the latest checkpoint's. */
  async function sizeOf(tenant: string, value: bigint): Promise<number> {
    return value === 0n ? (await checkpoints.latest(tenant, false)).size : Number(value);
  }

  return {
    async getCheckpoint(req) {
      const checkpoint = await checkpoints.latest(req.tenant, req.fresh);
      return {
        checkpoint: checkpoint.note,
        origin: checkpoint.origin,
        treeSize: BigInt(checkpoint.size),
        rootHash: checkpoint.root,
        verifierKey: checkpoints.verifierKey,
      };
    },

    async getInclusionProof(req: GetInclusionProofRequest) {
      const tenant = req.tenant;
      const ref = req.eventRef;
      checkSize(req.treeSize, "tree_size");
      let row: Awaited<ReturnType<EventStore["get"]>>;
      if (ref.case === "sequence") {
        if (ref.value < 1n || ref.value > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw invalidArgument([{ field: "sequence", description: "must be a sequence, 1 or more" }]);
        }
        const sequence = Number(ref.value);
        [row] = await store.range({
          tenant,
          afterSequence: sequence - 1,
          throughSequence: sequence,
          nowMicros: 0n,
          limit: 1,
        });
      } else if (ref.case === "id" && ref.value !== "") {
        row = await store.get(tenant, ref.value);
      } else {
        throw invalidArgument([
          { field: "sequence", description: "the event's sequence or id is required", reason: Reason.MissingField },
        ]);
      }
      if (!row) {
        throw domainError(
          Code.NotFound,
          Reason.EventNotFound,
          `tenant ${tenant} has no event ${ref.case} ${ref.value}`,
        );
      }
      const size = await sizeOf(tenant, req.treeSize);
      const index = row.sequence - 1;
      if (index >= size) {
        throw domainError(
          Code.OutOfRange,
          Reason.TreeSizeOutOfRange,
          `tree_size: the event (sequence ${row.sequence}) is not in the tree of ${size} events; ask for a larger tree`,
          { field: "tree_size", treeSize: String(size) },
        );
      }
      const hashes = await prove(tenant, size, "tree_size", (perfect) => inclusionProof(perfect, index, size));
      return { event: rowToEvent(row), leafIndex: BigInt(index), treeSize: BigInt(size), hashes };
    },

    async getConsistencyProof(req: GetConsistencyProofRequest) {
      const tenant = req.tenant;
      if (req.fromSize < 1n || req.fromSize > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw invalidArgument([{ field: "from_size", description: "must be a tree size, 1 or more" }]);
      }
      checkSize(req.toSize, "to_size");
      const to = await sizeOf(tenant, req.toSize);
      const from = Number(req.fromSize);
      if (from > to) {
        throw domainError(Code.OutOfRange, Reason.TreeSizeOutOfRange, `from_size: ${from} is beyond to_size ${to}`, {
          field: "from_size",
          treeSize: String(to),
        });
      }
      const hashes = await prove(tenant, to, "to_size", (perfect) => consistencyProof(perfect, from, to));
      return { fromSize: BigInt(from), toSize: BigInt(to), hashes };
    },
  };
}
