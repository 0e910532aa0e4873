/**
 * The Grafana push's place in the stack (issue 17, item 10): only Grafana's push depends on
 * the Grafana URL (read from the property dependencies the mocks record for every input), one
 * deadline for Grafana's first start, and a /metrics that asks for credentials.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import {
  GRAFANA_FIRST_START,
  GRAFANA_POST_LINES,
  GRAFANA_SECRET_LINES,
  GRAFANA_STDIN_ORDER,
} from "../infra/delivery/grafanaSecrets";
import { PROMETHEUS_SECRET_LINES } from "../infra/delivery/prometheusSecrets";
import { installScript } from "../infra/delivery/scripts";
import { GRAFANA_METRICS_PASSWORD_PATH, renderGrafanaServerFiles } from "../templates/host/grafanaServer";
import { GRAFANA_METRICS_PASSWORD_FILE, prometheusConfig } from "../templates/prometheus/config";
import { parseEnvironmentFile } from "./support/grafanaSettings";
import { testContext } from "./support/render";
import { DEFAULT_WAIT } from "../tools/validate/checkGrafana";
import { isSecretValue, plainInputs, snapshot, type TimedSnapshot } from "./support/snapshots";

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

describe("Grafana's /metrics asks for credentials, and only Prometheus has them", () => {
  const ctx = testContext();
  const env = parseEnvironmentFile(renderGrafanaServerFiles(ctx)[0].content);
  const job = prometheusConfig(ctx).scrape_configs.find((j) => j.job_name === "grafana");

  it("Grafana sets both basic-auth settings (http_server.go enforces them only when both are set)", () => {
    assert.equal(env.GF_METRICS_ENABLED, "true");
    assert.ok(env.GF_METRICS_BASIC_AUTH_USERNAME, "a user");
    assert.equal(
      env.GF_METRICS_BASIC_AUTH_PASSWORD,
      `$__file{${GRAFANA_METRICS_PASSWORD_PATH}}`,
      "a file Grafana reads",
    );
  });

  it("Prometheus scrapes as that user with a password file, never an inline password", () => {
    assert.deepEqual(job?.basic_auth, {
      username: env.GF_METRICS_BASIC_AUTH_USERNAME,
      password_file: GRAFANA_METRICS_PASSWORD_FILE,
    });
    for (const other of prometheusConfig(ctx).scrape_configs.filter((j) => j.job_name !== "grafana"))
      assert.equal(other.basic_auth, undefined, other.job_name);
  });

  it("both pushes write their file from stdin, and the same secret reaches both", async () => {
    assert.ok(
      GRAFANA_SECRET_LINES.some((l) => l.startsWith(`secret ${GRAFANA_METRICS_PASSWORD_PATH} root grafana 0440 `)),
    );
    assert.ok(PROMETHEUS_SECRET_LINES.some((l) => l.includes(`sudo mv "$tmp" ${GRAFANA_METRICS_PASSWORD_FILE}`)));
    const snap = await snapshot({});
    const stdin = (name: string) => {
      const v = snap.resources.find((r) => r.name === name)?.inputs.stdin as { value?: string } | undefined;
      assert.ok(isSecretValue(v), `${name}: stdin is a secret`);
      return String(v?.value);
    };
    const grafana = stdin("grafana-push-install").split("\n")[GRAFANA_STDIN_ORDER.indexOf("metricsPassword")];
    assert.equal(stdin("prometheus-push-install"), `${grafana}\n`);
    const password = snap.resources.find((r) => r.name === "grafana-metrics-password");
    assert.equal(password?.type, "random:index/randomPassword:RandomPassword");
    for (const r of snap.resources) assert.ok(!plainInputs(r).includes(grafana), `${r.name} carries it in plain text`);
  });

  for (const shell of ["bash", "dash"]) {
    it(`under ${shell}: the Prometheus push writes the password file once and lists it as changed`, () => {
      const root = fs.mkdtempSync(path.join(os.tmpdir(), "prometheus-secret-"));
      try {
        const bin = path.join(root, "bin");
        fs.mkdirSync(bin);
        fs.writeFileSync(
          path.join(bin, "sudo"),
          '#!/bin/sh\ncase "$1" in chown) exit 0 ;; install) eval "last=\\${$#}"; mkdir -p "$last" ;; *) exec "$@" ;; esac\n',
          { mode: 0o755 },
        );
        fs.writeFileSync(path.join(bin, "systemctl"), '#!/bin/sh\necho "$*" >>"$LOG"\n', { mode: 0o755 });
        const staging = path.join(root, "titan-staging", "0123456789abcdef");
        fs.mkdirSync(staging, { recursive: true });
        const script = installScript({
          staging,
          files: [],
          actions: [{ prefix: "/etc/prometheus/", then: { service: "prometheus", action: "reload" } }],
          extra: PROMETHEUS_SECRET_LINES,
        })
          .split("/etc/prometheus")
          .join(`${root}/etc/prometheus`);
        const run = () =>
          spawnSync(shell, ["-c", script], {
            input: "metrics-password-0123\n",
            encoding: "utf8",
            env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}`, LOG: path.join(root, "systemctl.log") },
          });
        const first = run();
        assert.equal(first.status, 0, first.stderr);
        assert.match(first.stdout, new RegExp(`installed: ${root}${GRAFANA_METRICS_PASSWORD_FILE}$`, "m"));
        assert.equal(fs.readFileSync(root + GRAFANA_METRICS_PASSWORD_FILE, "utf8"), "metrics-password-0123");
        assert.equal(fs.statSync(root + GRAFANA_METRICS_PASSWORD_FILE).mode & 0o777, 0o440);
        assert.equal(fs.readFileSync(path.join(root, "systemctl.log"), "utf8"), "reload prometheus\n");
        const second = run();
        assert.match(second.stdout, /installed: nothing changed/);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  }
});
