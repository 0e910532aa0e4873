/**
 * The fleet's checks can fail: each is run against a real host in the state it checks (it
 * passes), then against the same host with that state broken (it fails, saying what is wrong).
 * Plus the pure parts (denial filter, pin globs, target matching, the summary) without hosts.
 * The container half needs what the fleet needs (root, systemd-nspawn): tests/fleet/fleet.ts.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BOOTSTRAP_DONE } from "../../templates/host/bootstrap";
import { VERSIONS } from "../../facts/versions";
import { differences, isVerificationStep, onlyRestarted, untouched, type Fingerprint } from "./checks/changes";
import { ContainerHost } from "./checks/host";
import { expectedTargets, targetProblem, type ActiveTarget } from "./checks/prometheus";
import type { CheckResult } from "./checks/result";
import {
  bootstrapMarker,
  cloudInitFinished,
  collectorOf,
  collectorSuccess,
  noFailedUnits,
  nodeCollectorsSucceed,
  noSandboxDenials,
  pinnedPackages,
  pinPattern,
  sandboxDenials,
  timespanMs,
  unitActive,
  unsteady,
} from "./checks/system";
import type { CheckHost } from "./checks/host";
import { alertDefinitions } from "../../templates/alerts";
import { buildDashboards } from "../../templates/grafana/dashboards";
import { testConfig } from "../support/render";
import { Cleanup } from "./cleanup";
import { waitFor } from "./exec";
import { killAndRecover } from "./faults";
import { startFleet } from "./fleet";
import { FLEET_PLAN } from "./layout";
import { exitStatus, formatReport, summaryLine } from "./report";

test("pins: an apt glob matches Debian's revisions of the pinned upstream version, nothing else", () => {
  const p = pinPattern(VERSIONS.prometheus.aptPin);
  assert.ok(p.test("2.42.0+ds-5+deb12u1"));
  assert.ok(!p.test("2.42.0+ds"), "no revision");
  assert.ok(!p.test("2.42.01+ds-1"));
  assert.ok(!p.test("12.42.0+ds-1"));
  assert.ok(pinPattern(VERSIONS.alloy.aptPin).test(VERSIONS.alloy.aptPin));
  assert.ok(!pinPattern(VERSIONS.alloy.aptPin).test(`${VERSIONS.alloy.aptPin}0`));
  // Grafana's security re-issues: two digits after the patch, nothing else.
  const reissue = pinPattern(`${VERSIONS.grafana.aptPin}-[0-9][0-9]`);
  assert.ok(reissue.test(`${VERSIONS.grafana.aptPin}-01`));
  assert.ok(!reissue.test(`${VERSIONS.grafana.aptPin}-1`) && !reissue.test(`${VERSIONS.grafana.aptPin}-0a`));
});

test("denials: rlimit artifacts are excluded by their exact cause, any other refusal is kept", () => {
  const journal = [
    "2026-11-23T02:50:00+0000 prometheus dbus-daemon[120]: [system] org.freedesktop.DBus.Error.AccessDenied: Failed to set fd limit to 65536: Operation not permitted",
    "2026-11-23T02:50:01+0000 prometheus sudo[164]: pam_limits(sudo:session): Could not set limit for 'core' to soft=0, hard=-1: Operation not permitted; uid=1000,euid=0",
    "2026-11-23T02:50:02+0000 web-1 alloy[300]: socket(AF_NETLINK): Address family not supported by protocol",
    "2026-11-23T02:50:03+0000 web-1 gunicorn[400]: setgroups: Operation not permitted",
    "2026-11-23T02:50:04+0000 web-1 loki[500]: open /var/lib/loki/wal: EPERM",
    // The same words from another process are not excused.
    "2026-11-23T02:50:05+0000 web-1 titan[600]: Failed to set fd limit to 65536: Operation not permitted",
    // A write outside ReadWritePaths= (ProtectSystem=strict) and a path the unit may not read.
    "2026-11-23T02:50:06+0000 loki loki[700]: mkdir /var/lib/loki/rules: read-only file system",
    "2026-11-23T02:50:07+0000 grafana grafana[800]: open /etc/grafana/secrets.ini: permission denied",
    "2026-11-23T02:50:08+0000 web-1 alloy[900]: write /var/lib/alloy/x: EROFS",
    "2026-11-23T02:50:09+0000 web-1 alloy[900]: open /proc/1/environ: EACCES",
    // Words that merely contain the codes are no denial.
    "2026-11-23T02:50:10+0000 web-1 titan[600]: GET /healthz 200 EACCESSOR=none",
  ].join("\n");
  const kept = sandboxDenials(journal);
  assert.equal(kept.length, 8, kept.join("\n"));
  assert.ok(kept.some((l) => /read-only file system/.test(l)) && kept.some((l) => /permission denied/.test(l)));
  assert.ok(kept.every((l) => !/dbus-daemon|pam_limits/.test(l)));
});

test("units: RestartSec as systemctl prints it; a new main pid, a counted restart or a stop is no steady run", () => {
  assert.equal(timespanMs("5s"), 5000);
  assert.equal(timespanMs("100ms"), 100);
  assert.equal(timespanMs("1min 30s"), 90_000);
  assert.throws(() => timespanMs("infinity"), /RestartUSec: "infinity" is not a systemd time span/);
  const run = { activeState: "active", subState: "running", mainPid: "100", nRestarts: "0" };
  assert.equal(unsteady(run, { ...run }), undefined);
  assert.equal(unsteady(run, { ...run, mainPid: "200" }), "main pid 100 became 200");
  assert.equal(unsteady(run, { ...run, nRestarts: "1" }), "restarts 0 became 1");
  assert.equal(
    unsteady(run, { ...run, activeState: "activating", subState: "auto-restart", mainPid: "0" }),
    "activating (auto-restart)",
  );
});

/** A host whose commands answer from a table (argv joined by spaces), for checks' parsing. */
const scripted = (answers: Record<string, string>): CheckHost => ({
  name: "grafana",
  role: "grafana",
  privateIp: "10.42.0.13",
  exec: (command) => Promise.resolve({ status: 0, out: answers[command.join(" ")] ?? "" }),
});

test("failed units: any failed unit fails the check, named with its log", async () => {
  const failed = "systemctl --failed --no-legend --plain --full";
  const log = "journalctl -u ifupdown-pre.service -n 3 --no-pager -o cat";
  const result = "systemctl show -p Result,ExecMainStatus --value ifupdown-pre.service";
  assert.ok((await noFailedUnits(scripted({ [failed]: "" }))).ok);
  const one = await noFailedUnits(
    scripted({
      [failed]: "ifupdown-pre.service loaded failed failed Helper to synchronize boot up for ifupdown\n",
      [result]: "exit-code\n219\n",
      [log]: "ifupdown-pre.service: Failed at step CGROUP spawning /bin/sh: No such file or directory\n",
    }),
  );
  assert.equal(one.ok, false);
  assert.equal(
    one.detail,
    "failed: ifupdown-pre.service; ifupdown-pre.service (exit-code 219): ifupdown-pre.service: Failed at step CGROUP spawning /bin/sh: No such file or directory",
  );
});

test("collectors: every node_ metric the alerts and dashboards read has its collector checked", () => {
  const rendered = JSON.stringify(alertDefinitions(testConfig())) + JSON.stringify(buildDashboards(testConfig()));
  // node_exporter is the job's name in summaries, not a metric.
  const metrics = [...new Set(rendered.match(/\bnode_[A-Za-z_]+/g) ?? [])].filter((m) => m !== "node_exporter");
  assert.ok(metrics.includes("node_timex_offset_seconds"), metrics.join(" "));
  assert.deepEqual(
    metrics.filter((m) => collectorOf(m) === undefined),
    [],
  );
  const exposition = [
    'node_scrape_collector_success{collector="cpu"} 1',
    'node_scrape_collector_success{collector="timex"} 0',
  ].join("\n");
  assert.deepEqual(
    [...collectorSuccess(exposition, ["cpu", "timex", "netdev"])],
    [
      ["cpu", "1"],
      ["timex", "0"],
      ["netdev", "missing"],
    ],
  );
});

const active = (job: string, address: string, health: string, role = "web"): ActiveTarget => ({
  labels: { job, role, instance: "x" },
  discoveredLabels: { __address__: address },
  health,
  lastError: health === "up" ? "" : "connection refused",
  lastScrape: new Date().toISOString(),
});

test("targets: every job of the scrape table on its roles' hosts; down, missing or mislabelled targets fail", () => {
  const expected = expectedTargets(FLEET_PLAN.hosts);
  const jobs = expected.map((t) => `${t.job}@${t.host}`).sort();
  assert.deepEqual(jobs, [
    "alloy@web-1",
    "grafana@grafana",
    "loki@loki",
    "node@grafana",
    "node@loki",
    "node@prometheus",
    "node@web-1",
    "prometheus@prometheus",
    "remediation@web-1",
    "titan@web-1",
  ]);
  const node = expected.find((t) => t.job === "node" && t.host === "web-1");
  assert.ok(node);
  assert.equal(node.packaging, "debian");
  assert.equal(expected.find((t) => t.job === "alloy")?.packaging, "stand-in");
  assert.equal(targetProblem(node, [active("node", node.address, "up")]), undefined);
  assert.match(targetProblem(node, [active("node", node.address, "down")]) ?? "", /down: connection refused/);
  assert.equal(targetProblem(node, [active("node", "10.42.0.99:9100", "up")]), "not discovered");
  assert.match(targetProblem(node, [active("node", node.address, "up", "loki")]) ?? "", /role label loki/);
});

test("report: a line per check, failures repeated, the summary last; any failure fails the run", () => {
  const results: CheckResult[] = [
    { name: "a", host: "web-1", ok: true, detail: "fine" },
    { name: "b", host: "prometheus", ok: false, detail: "broken" },
  ];
  const text = formatReport(results);
  assert.match(text, /^PASS {2}web-1 {7}a: fine$/m);
  assert.match(text, /^FAIL {2}prometheus {2}b: broken$/m);
  assert.equal(text.trim().split("\n").pop(), "1 passed, 1 failed");
  assert.equal(summaryLine(results), "1 passed, 1 failed");
  assert.equal(exitStatus(results), 1);
  assert.equal(exitStatus([results[0]]), 0);
  assert.equal(exitStatus([]), 1, "a run that checked nothing is no success");
});

test("changes: a restarted or stopped service and any touched pushed file count; short timer jobs and login managers do not", () => {
  const fp = (units: [string, string][], files: [string, string][]): Fingerprint => ({
    units: new Map(units),
    files: new Map(files),
  });
  const before = fp(
    [
      ["prometheus.service", "a 100 10"],
      ["prometheus-node-exporter.service", "b 90 9"],
    ],
    [["/etc/prometheus/prometheus.yml", "1.0"]],
  );
  const host = {
    name: "prometheus",
    role: "prometheus" as const,
    privateIp: "10.42.0.10",
    exec: () => Promise.reject(new Error("unused")),
  };
  const same = fp([...before.units, ["apt-daily.service", "c 200 20"]], [...before.files]);
  assert.deepEqual(differences(before, same), { units: [], files: [] });
  assert.ok(untouched(host, before, same, "x").ok);
  const restarted = fp(
    [
      ["prometheus.service", "d 300 30"],
      ["prometheus-node-exporter.service", "b 90 9"],
    ],
    [["/etc/prometheus/prometheus.yml", "2.0"]],
  );
  const bad = untouched(host, before, restarted, "x");
  assert.equal(bad.ok, false);
  assert.match(bad.detail, /restarted: prometheus\.service; files: \/etc\/prometheus\/prometheus\.yml/);
  assert.ok(onlyRestarted(host, before, restarted, ["prometheus"], "x").ok);
  assert.equal(onlyRestarted(host, before, before, ["prometheus"], "x").ok, false, "no restart is not a restart");
  const stopped = fp([["prometheus.service", "a 100 10"]], [...before.files]);
  assert.deepEqual(differences(before, stopped).units, ["prometheus-node-exporter.service"]);
  // A login's user manager coming and going (every SSH login, the log markers' too) is no restart.
  const withLogin = fp([...before.units, ["user@1000.service", "e 400 40"]], [...before.files]);
  assert.deepEqual(differences(withLogin, before).units, []);
  assert.ok(isVerificationStep("web-1-log-marker"));
  assert.ok(!isVerificationStep("grafana-push-install"));
});

const only = (r: CheckResult[], name: RegExp): CheckResult => {
  const found = r.find((x) => name.test(x.name));
  assert.ok(found, `no check named ${name} in ${JSON.stringify(r)}`);
  return found;
};

test(
  "on a real host each check passes, then fails once what it checks is broken",
  { timeout: 30 * 60_000 },
  async () => {
    const cleanup = new Cleanup();
    try {
      const fleet = await startFleet(cleanup, { hosts: ["prometheus"], log: () => undefined });
      const f = fleet.hosts[0];
      const h = new ContainerHost(f.slot.name, f.slot.role, f.slot.privateIp, f.container, f.volume?.volumeId);
      const sh = async (line: string) => {
        const r = await h.exec(["/bin/sh", "-c", line]);
        assert.equal(r.status, 0, `${line}: ${r.out}`);
      };

      // As the bootstrap left it: every check holds (so none of them is one that cannot fail).
      const fine = [
        await cloudInitFinished(h),
        await bootstrapMarker(h),
        ...(await pinnedPackages(h)),
        await unitActive(h, "prometheus-node-exporter"),
        await noSandboxDenials(h),
        await noFailedUnits(h),
        await nodeCollectorsSucceed(h),
      ];
      assert.deepEqual(
        fine.filter((r) => !r.ok),
        [],
      );

      // A daemon killed with SIGKILL comes back: the fault check sees systemd's restart.
      const killed = await killAndRecover(h, "prometheus-node-exporter", undefined, undefined);
      assert.ok(killed.ok, killed.detail);
      assert.match(killed.detail, /pid \d+ killed, now pid \d+/);

      // Killed while the unit check watches it: systemd brings it back within RestartSec, so it
      // is "active" again, but not the same run.
      const watching = unitActive(h, "prometheus-node-exporter");
      await sh("sleep 1; systemctl kill -s KILL prometheus-node-exporter");
      const restarted = await watching;
      assert.equal(restarted.ok, false);
      assert.match(restarted.detail, /^not steady within \d+ ms \(RestartSec 5s\): (main pid|restarts|activating)/);

      // Our sandbox refusing adjtimex again (a later drop-in's deny entry): the timex collector
      // fails, which node_exporter does not log at its default level; the collector check names it.
      await sh(
        "printf '[Service]\\nSystemCallFilter=~adjtimex\\n' > /etc/systemd/system/prometheus-node-exporter.service.d/zz-deny.conf && systemctl daemon-reload && systemctl restart prometheus-node-exporter",
      );
      const timex = await waitFor(
        "node_exporter to answer with timex failing",
        async () => {
          const r = await nodeCollectorsSucceed(h);
          return /timex=0/.test(r.detail) ? r : undefined;
        },
        { timeoutMs: 30_000 },
      );
      assert.equal(timex.ok, false);
      assert.equal(timex.detail, "node_scrape_collector_success: timex=0");

      // A unit that failed: the failed-unit check names it.
      const broken = await h.exec(["systemd-run", "--unit=titan-check-broken", "--wait", "/bin/false"]);
      assert.notEqual(broken.status, 0, broken.out);
      const failedUnit = await noFailedUnits(h);
      assert.equal(failedUnit.ok, false);
      assert.match(failedUnit.detail, /^failed: titan-check-broken\.service;/);

      // node_exporter stopped and masked: its unit check fails and says how the unit is.
      await sh("systemctl mask --now prometheus-node-exporter");
      const unit = await unitActive(h, "prometheus-node-exporter");
      assert.equal(unit.ok, false);
      assert.match(unit.detail, /^inactive \(dead\)/);
      // ...and a kill of it cannot be "recovered".
      const notRunning = await killAndRecover(h, "prometheus-node-exporter", undefined, undefined);
      assert.equal(notRunning.ok, false);
      assert.match(notRunning.detail, /not running before the kill/);

      // A pinned package at another version (dpkg's record of it rewritten): the pin check fails naming it.
      const pkg = VERSIONS.nodeExporter.package;
      await sh(`sed -i '/^Package: ${pkg}$/,/^$/ s/^Version: .*/Version: 1.6.0-1/' /var/lib/dpkg/status`);
      const pin = only(await pinnedPackages(h), new RegExp(`^${pkg} `));
      assert.equal(pin.ok, false);
      assert.equal(pin.detail, "installed 1.6.0-1");

      // A daemon refused by its sandbox, as it would log it: the journal check fails quoting it.
      await sh("echo 'socket(AF_NETLINK): Address family not supported by protocol' | systemd-cat -t node_exporter");
      const denial = await waitForFailure(() => noSandboxDenials(h));
      assert.match(denial.detail, /node_exporter.*Address family not supported/);

      // No marker: the bootstrap did not finish.
      await sh(`rm ${BOOTSTRAP_DONE}`);
      const marker = await bootstrapMarker(h);
      assert.equal(marker.ok, false);
      assert.match(marker.detail, /missing or malformed/);

      // cloud-init reporting an error in its result.
      await sh(
        `sed -i 's/"errors": \\[\\]/"errors": ["(\\x27init\\x27, RuntimeError(\\x27injected\\x27))"]/' /run/cloud-init/result.json`,
      );
      const ci = await cloudInitFinished(h);
      assert.equal(ci.ok, false);
      assert.match(ci.detail, /injected/);
    } finally {
      assert.deepEqual(await cleanup.run(), []);
    }
  },
);

/** journald writes asynchronously: poll the real condition (the line is in the journal). */
async function waitForFailure(check: () => Promise<CheckResult>): Promise<CheckResult> {
  return waitFor(
    "the check to see the injected line",
    async () => {
      const r = await check();
      return r.ok ? undefined : r;
    },
    { timeoutMs: 30_000 },
  );
}
