import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";

/**
 * CPU and memory as Linux accounts them, read from /proc, so the bench can say who used the two cores during a
 * measurement: the service, PostgreSQL, the load generator, or something else on the machine.
 */

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) so far. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0] ?? "";
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
}

/** Resident memory of a process in MiB; 0 once it is gone. */
export function rssMiB(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** A process and every descendant, e.g. a PostgreSQL postmaster and its backends. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const child of children.get(pid) ?? []) walk(child);
  };
  walk(root);
  return out;
}

export interface CpuShares {
  seconds: number;
  /** Each group's share of the machine's CPU capacity (cores x seconds), in percent. */
  shares: Record<string, number>;
  /** Each group's CPU seconds (user + system) during the measurement. */
  used: Record<string, number>;
  /** Busy share of the machine, all processes. */
  machine: number;
  loadAverage: number;
}

/**
 * Starts measuring the CPU of named process groups; call the returned function when the measurement ends.
 * Groups are functions so processes that start later (PostgreSQL backends, h2load) are counted.
 */
export function measureCpu(groups: Record<string, () => number[]>): () => CpuShares {
  const startedAt = performance.now();
  const machineStart = machineCpu();
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const owner = new Map<number, string>();
  const sample = () => {
    for (const [name, pids] of Object.entries(groups)) {
      for (const pid of pids()) {
        const used = cpuSeconds(pid);
        if (!first.has(pid)) first.set(pid, used);
        last.set(pid, Math.max(used, last.get(pid) ?? 0));
        owner.set(pid, name);
      }
    }
  };
  sample();
  const timer = setInterval(sample, 250);
  return () => {
    clearInterval(timer);
    sample();
    const seconds = (performance.now() - startedAt) / 1000;
    const capacity = seconds * os.availableParallelism();
    const machineEnd = machineCpu();
    const used: Record<string, number> = Object.fromEntries(Object.keys(groups).map((name) => [name, 0]));
    // A process that ended during the measurement counts with its last sample.
    for (const [pid, total] of last) {
      const name = owner.get(pid) as string;
      used[name] = (used[name] ?? 0) + total - (first.get(pid) ?? total);
    }
    const shares = Object.fromEntries(Object.entries(used).map(([name, s]) => [name, round((100 * s) / capacity)]));
    return {
      seconds: round(seconds),
      shares,
      used,
      machine: round((100 * (machineEnd.busy - machineStart.busy)) / (machineEnd.total - machineStart.total)),
      loadAverage: round(os.loadavg()[0] ?? 0, 2),
    };
  };
}

/** Resident memory of a process split as the kernel counts it, in MiB: anonymous (heaps, buffers) and file-backed. */
export function rssSplitMiB(pid: number): { anon: number; file: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0) / 1024;
    return { anon: round(field("Anonymous")), file: round(field("Rss") - field("Anonymous")) };
  } catch {
    return undefined;
  }
}

/**
 * Tracks the highest RSS of some processes until stopped: over the whole run and per part (the name last given to
 * `part`). Sampled from /proc every 200 ms while the processes are loaded. Each time a part's peak rises, `peak` is
 * told, so the caller can ask the process what its memory is made of at that moment.
 */
export function watchRss(
  pids: () => number[],
  peak?: (pid: number, mib: number, part: string) => void,
): { max(): number; parts(): Record<string, number>; part(name: string): void; stop(): void } {
  let max = 0;
  let current = "";
  const parts = new Map<string, number>();
  const timer = setInterval(() => {
    for (const pid of pids()) {
      const mib = rssMiB(pid);
      max = Math.max(max, mib);
      if (mib > (parts.get(current) ?? 0)) {
        parts.set(current, mib);
        peak?.(pid, mib, current);
      }
    }
  }, 200);
  timer.unref();
  return {
    max: () => round(max),
    parts: () => Object.fromEntries([...parts].map(([name, mib]) => [name, round(mib)])),
    part: (name) => {
      current = name;
    },
    stop: () => clearInterval(timer),
  };
}

/** The middle value (the lower of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] as number;
}

export function round(n: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
