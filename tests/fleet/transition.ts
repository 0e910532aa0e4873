/**
 * What a transition of the lifecycle matrix is (matrix.ts holds the table), and how its effect is
 * awaited on a host. Apart from the table so that a transition defined in its own module
 * (remediationModes.ts) can be listed in it without an import cycle.
 */
import type { AmpSampleRate } from "./ampSampleRate";
import type { ContainerHost } from "./checks/host";
import { fail, type CheckResult } from "./checks/result";
import { waitFor } from "./exec";
import type { ProvisionedFleet } from "./provision";

export interface LiveTiming {
  readonly host: string;
  /** From the start of the `up` until the change was seen in effect on the host. */
  readonly seconds: number;
}

export interface TransitionRecord {
  /** The transition's name in the table (and in the timings file). */
  readonly id: string;
  readonly results: CheckResult[];
  readonly live: LiveTiming[];
  /** What the transition measured of the stack's samples, when it ran with metricsStore=amp. */
  readonly sampleRate?: AmpSampleRate;
}

export interface MatrixContext {
  readonly pf: ProvisionedFleet;
  readonly hosts: readonly ContainerHost[];
  readonly prometheusUrl?: string;
  readonly log: (line: string) => void;
}

export interface Transition {
  readonly id: string;
  /** What the user changes, and what must then hold on the hosts (for the README's table). */
  readonly change: string;
  readonly expect: string;
  run(ctx: MatrixContext): Promise<Omit<TransitionRecord, "id">>;
}

const EFFECT_TIMEOUT_MS = 120_000;

/**
 * Polls `probe` until it holds (or the deadline): the check, and the seconds from `started`
 * (the start of the `up`) until it first held.
 */
export async function inEffect(
  name: string,
  host: string,
  started: number,
  probe: () => Promise<{ ok: boolean; detail: string }>,
  timeoutMs = EFFECT_TIMEOUT_MS,
): Promise<{ result: CheckResult; live?: LiveTiming }> {
  let last = "";
  try {
    const held = await waitFor(
      name,
      async () => {
        const r = await probe();
        last = r.detail;
        return r.ok ? r : undefined;
      },
      { timeoutMs, intervalMs: 250, why: () => last },
    );
    const seconds = (Date.now() - started) / 1000;
    return {
      result: { name, host, ok: true, detail: `${held.detail} (live ${seconds.toFixed(1)} s after the up started)` },
      live: { host, seconds },
    };
  } catch (err) {
    return { result: fail(name, host, (err as Error).message) };
  }
}
