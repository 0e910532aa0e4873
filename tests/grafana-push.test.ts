/**
 * The Grafana push's place in the stack (issue 17, item 10): only Grafana's push depends on
 * the Grafana URL, read from the property dependencies the mocks record for every input.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { GRAFANA_FIRST_START, GRAFANA_POST_LINES } from "../infra/delivery/grafanaSecrets";
import { DEFAULT_WAIT } from "../tools/validate/checkGrafana";
import { snapshot, type TimedSnapshot } from "./support/snapshots";

const COMMAND = /^command:/;

describe("only Grafana's push depends on the Grafana URL", () => {
  let snap: TimedSnapshot;
  before(async () => {
    snap = await snapshot({});
    assert.equal(snap.error, undefined, snap.error);
  });

  /** The URNs of the Grafana host's AWS resources (its instance, its address). */
  const grafanaUrns = () =>
    new Set(snap.resources.filter((r) => r.type.startsWith("aws:") && /^grafana(-|$)/.test(r.name)).map((r) => r.urn));

  it("no other host's push has an input that comes from the Grafana host", () => {
    const urns = grafanaUrns();
    assert.ok(urns.size > 0, "the Grafana host's resources are recorded");
    const pushes = snap.resources.filter((r) => COMMAND.test(r.type) && /-push-/.test(r.name));
    const others = pushes.filter((r) => !r.name.startsWith("grafana-"));
    assert.ok(others.length > 0);
    for (const r of others) {
      for (const [input, deps] of Object.entries(r.propertyDependencies)) {
        const from = deps.filter((u) => urns.has(u));
        assert.deepEqual(
          from,
          [],
          `${r.name}.${input} depends on the Grafana host: a replaced Grafana would re-run it`,
        );
      }
    }
  });

  it("Grafana's own push does (its root URL is in grafana-server's settings)", () => {
    const urns = grafanaUrns();
    const install = snap.resources.find((r) => r.name === "grafana-push-install");
    assert.ok(install);
    assert.ok((install.propertyDependencies.create ?? []).some((u) => urns.has(u)));
  });
});

describe("one deadline for Grafana's first start", () => {
  it("the push waits for /api/health exactly as long, and as often, as CI waits for provisioning", () => {
    const loop = GRAFANA_POST_LINES.map((l) => /^for _ in \$\(seq 1 (\d+)\); do$/.exec(l)).find(Boolean);
    const pause = GRAFANA_POST_LINES.map((l) => /^\s*sleep (\d+)$/.exec(l)).find(Boolean);
    assert.ok(loop && pause, "the push polls in a counted loop with a pause");
    const pushSeconds = Number(loop[1]) * Number(pause[1]);
    assert.equal(pushSeconds, GRAFANA_FIRST_START.timeoutSeconds);
    assert.equal(Number(pause[1]), GRAFANA_FIRST_START.intervalSeconds);
    assert.equal(DEFAULT_WAIT.timeoutMs, pushSeconds * 1000, "CI's boot check");
    assert.equal(DEFAULT_WAIT.intervalMs, Number(pause[1]) * 1000);
  });
});
