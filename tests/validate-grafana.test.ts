/**
 * CI's Grafana boot (issue 11, item 6): what must be provisioned is read back from the rendered
 * files; the check polls a (fake, real-HTTP) Grafana until all of it is visible, with a deadline
 * whose message names what is missing; both variants are rendered with the push's own install
 * script; the package facts come from the versions table; and the workflow's install step
 * refuses a key with another fingerprint (run here against a throwaway key).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import YAML from "yaml";
import { MAX_WEB_HOSTS } from "../facts/addressing";
import { GRAFANA_STDIN_ORDER } from "../infra/delivery/grafanaSecrets";
import { GRAFANA_PUSH } from "../infra/delivery/pipeline";
import { installScript } from "../infra/delivery/scripts";
import { alertDefinitions, DASHBOARD_UIDS, RETIRED_ALERTS } from "../templates/alerts";
import {
  DATASOURCE_UIDS,
  DEFAULT_RECEIVER,
  GRAFANA_PATHS,
  SLACK_CONTACT_POINT,
  SLACK_WEBHOOK_ENV,
} from "../templates/grafana/constants";
import { GRAFANA_ADMIN_PASSWORD_PATH, GRAFANA_DROP_IN_PATH, GRAFANA_ENV_PATH } from "../templates/host/grafanaServer";
import { checkGrafana, readStagedGrafanaFiles } from "../tools/validate/checkGrafana";
import { expectedProvisioning, type ExpectedProvisioning } from "../tools/validate/expectedProvisioning";
import { envLines, grafanaAptEnv } from "../tools/validate/grafanaApt";
import { checkWaitOptions, waitForProvisioning } from "../tools/validate/provisioningWait";
import {
  GRAFANA_VARIANTS,
  grafanaHostFiles,
  grafanaVariant,
  NEVER_SHIPPED_UID,
  PROBE_RULE,
  renderForValidation,
  sampleContext,
  type GrafanaVariant,
  type Push,
  AMP_VARIANTS,
  SAMPLE_AMP_ENDPOINT,
} from "../tools/validate/renderForValidation";
import { acceptedPins, GRAFANA_APT, VERSIONS } from "../facts/versions";
import { APT_PREFERENCES_PATH } from "../templates/host/aptPins";
import { ROOT } from "./support/files";

const VARIANTS = Object.keys(GRAFANA_VARIANTS) as GrafanaVariant[];
const ADMIN = sampleContext().config.grafanaAdminUser;
const PASSWORD = "ci-password";
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

/** What a fresh Grafana shows before provisioning: nothing of ours, its default policy tree. */
interface GrafanaState {
  datasources: { uid: string }[];
  dashboards: { uid: string }[];
  rules: { uid: string }[];
  contactPoints: { uid: string; name: string; type: string }[];
  policy: { receiver: string; routes?: { receiver: string }[] };
  acceptsDefaultAdmin: boolean;
}
const fresh = (): GrafanaState => ({
  datasources: [],
  dashboards: [],
  rules: [],
  contactPoints: [{ uid: "default-email-uid", name: DEFAULT_RECEIVER, type: "email" }],
  policy: { receiver: DEFAULT_RECEIVER },
  acceptsDefaultAdmin: false,
});
const provisioned = (e: ExpectedProvisioning): GrafanaState => ({
  ...fresh(),
  datasources: e.datasourceUids.map((uid) => ({ uid })),
  dashboards: e.dashboardUids.map((uid) => ({ uid })),
  rules: e.ruleUids.map((uid) => ({ uid })),
  contactPoints: [...fresh().contactPoints, ...e.contactPoints],
  policy: {
    receiver: e.policyReceivers[0],
    routes: e.policyReceivers.slice(1).map((receiver) => ({ receiver })),
  },
});

/** A fake Grafana over real HTTP: the API paths and shapes the check reads, basic auth enforced. */
async function fakeGrafana(state: () => GrafanaState, onRequest: (path: string) => void = () => {}) {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    onRequest(url.pathname);
    const s = state();
    const auth = req.headers.authorization;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/api/health") return send(200, { database: "ok" });
    const admin = auth === basic(ADMIN, PASSWORD) || (s.acceptsDefaultAdmin && auth === basic("admin", "admin"));
    if (!admin) return send(401, { message: "invalid username or password" });
    const routes: Record<string, unknown> = {
      "/api/user": { login: ADMIN },
      "/api/datasources": s.datasources,
      "/api/search": url.searchParams.get("type") === "dash-db" ? s.dashboards : [],
      "/api/v1/provisioning/alert-rules": s.rules,
      "/api/v1/provisioning/contact-points": s.contactPoints,
      "/api/v1/provisioning/policies": s.policy,
    };
    if (url.pathname in routes) return send(200, routes[url.pathname]);
    send(404, { message: "not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const headers = { Authorization: basic(ADMIN, PASSWORD) };
/** What CI's first push installs (the table's rules plus the probe the second push retires). */
const filesOf = (variant: GrafanaVariant, push: Push = "first") => grafanaHostFiles(sampleContext(), variant, push);

describe("what CI expects Grafana to provision, read from the rendered files", () => {
  it("lists every data source, dashboard and rule the renderer produced", () => {
    for (const variant of VARIANTS) {
      const e = expectedProvisioning(filesOf(variant));
      assert.deepEqual([...e.datasourceUids].sort(), Object.values(DATASOURCE_UIDS).sort());
      for (const uid of Object.values(DASHBOARD_UIDS)) assert.ok(e.dashboardUids.includes(uid), `${variant}: ${uid}`);
      for (const d of alertDefinitions(sampleContext().config))
        assert.ok(e.ruleUids.includes(d.uid), `${variant}: rule ${d.uid}`);
      assert.equal(new Set(e.ruleUids).size, e.ruleUids.length, "rule uids are unique");
    }
  });

  it("expects the Slack contact point and routes with a webhook, their absence and the default receiver without", () => {
    // Remediation is on in the sample (webCount 2): a webhook contact point and a first route per
    // web host; the slots past webCount are deleted (uids Grafana never had: CI proves that harmless).
    const webhooks = ["web-1", "web-2"].map((slot) => ({
      name: `titan-remediation-${slot}`,
      uid: `titan-remediation-${slot}`,
      type: "webhook",
    }));
    const pastWebCount = Array.from({ length: MAX_WEB_HOSTS - 2 }, (_, i) => `titan-remediation-web-${i + 3}`);
    const slack = expectedProvisioning(filesOf("slack"));
    assert.deepEqual(slack.contactPoints, [
      { name: SLACK_CONTACT_POINT.name, uid: SLACK_CONTACT_POINT.uid, type: "slack" },
      ...webhooks,
    ]);
    assert.deepEqual(slack.deletedContactPointUids, pastWebCount);
    assert.deepEqual(
      slack.policyReceivers.slice(1, 3),
      webhooks.map((w) => w.name),
    );
    assert.ok(
      slack.policyReceivers.length > 3 &&
        [slack.policyReceivers[0], ...slack.policyReceivers.slice(3)].every((r) => r === SLACK_CONTACT_POINT.name),
    );
    const none = expectedProvisioning(filesOf("no-slack"));
    assert.deepEqual(none.contactPoints, webhooks);
    assert.deepEqual(none.deletedContactPointUids, [SLACK_CONTACT_POINT.uid, ...pastWebCount]);
    assert.deepEqual(
      none.policyReceivers.slice(1, 3),
      webhooks.map((w) => w.name),
    );
    assert.ok([none.policyReceivers[0], ...none.policyReceivers.slice(3)].every((r) => r === DEFAULT_RECEIVER));
  });

  it("the second push turns remediation off: its webhook contact points are deleted, no route names them", () => {
    for (const variant of VARIANTS) {
      const first = expectedProvisioning(filesOf(variant, "first"));
      const second = expectedProvisioning(filesOf(variant, "second"));
      const webhooks = first.contactPoints.filter((c) => c.type === "webhook").map((c) => c.uid);
      assert.equal(webhooks.length, sampleContext().config.webCount, variant);
      assert.deepEqual(
        second.contactPoints.filter((c) => c.type === "webhook"),
        [],
        variant,
      );
      for (const uid of webhooks) assert.ok(second.deletedContactPointUids.includes(uid), `${variant}: ${uid}`);
      assert.ok(
        second.policyReceivers.every((r) => !webhooks.includes(r)),
        variant,
      );
    }
  });

  it("refuses a file set without a provisioning file, naming the path", () => {
    const files = filesOf("slack").filter((f) => f.path !== GRAFANA_PATHS.alertRules);
    assert.throws(() => expectedProvisioning(files), new RegExp(`expected ${GRAFANA_PATHS.alertRules} among`));
    const broken = filesOf("slack").map((f) =>
      f.path === GRAFANA_PATHS.datasources ? { ...f, content: "datasources: [{name: x}]\n" } : f,
    );
    assert.throws(
      () => expectedProvisioning(broken),
      /datasources\/titan\.yaml: expected uid to be a non-empty string/,
    );
  });
});

describe("waiting for Grafana's provisioning", { timeout: 20_000 }, () => {
  const expected = expectedProvisioning(filesOf("slack"));

  it("keeps polling while things are missing and returns once all are there", async () => {
    let state = fresh();
    const seen: string[] = [];
    const grafana = await fakeGrafana(
      () => state,
      (p) => seen.push(p),
    );
    let pauses = 0;
    try {
      const result = await waitForProvisioning(fetch, grafana.url, headers, expected, {
        timeoutMs: 30_000,
        intervalMs: 5,
        // Provisioning "finishes" between polls, after the waiter has seen it unfinished three times.
        sleep: async (ms) => {
          if (++pauses === 3) state = provisioned(expected);
          await new Promise((resolve) => setTimeout(resolve, ms));
        },
      });
      assert.equal(result.polls, 4, "three polls saw it unfinished, the fourth saw it done");
      assert.equal(seen.filter((p) => p === "/api/v1/provisioning/policies").length, 4, "every poll asks again");
    } finally {
      await grafana.close();
    }
  });

  it("fails at the deadline, naming everything still missing", async () => {
    const e = expected;
    const partial: GrafanaState = {
      ...provisioned(e),
      dashboards: e.dashboardUids.slice(1).map((uid) => ({ uid })),
      rules: e.ruleUids.slice(0, -1).map((uid) => ({ uid })),
      policy: { receiver: DEFAULT_RECEIVER },
    };
    const grafana = await fakeGrafana(() => partial);
    try {
      const started = Date.now();
      await assert.rejects(
        waitForProvisioning(fetch, grafana.url, headers, e, { timeoutMs: 300, intervalMs: 20 }),
        (err: Error) => {
          assert.match(err.message, /had not provisioned everything after [0-9.]+s \(\d+ polls, deadline 0\.3s\)/);
          assert.match(err.message, new RegExp(`still missing: dashboards ${e.dashboardUids[0]}; `));
          assert.match(err.message, new RegExp(`alert rules ${e.ruleUids.at(-1)}(;|$)`));
          assert.match(
            err.message,
            /notification policy tree with receivers \[titan-slack, .*\] \(Grafana has \[grafana-default-email\]\)/,
          );
          assert.doesNotMatch(err.message, /data sources|contact points/, "only what is missing is named");
          return true;
        },
      );
      assert.ok(Date.now() - started < 5_000, "bounded by the deadline");
    } finally {
      await grafana.close();
    }
  });

  it("counts a Grafana that does not answer yet as not provisioned, and says so at the deadline", async () => {
    const grafana = await fakeGrafana(fresh);
    await grafana.close(); // the port is now closed: connection refused
    await assert.rejects(
      waitForProvisioning(fetch, grafana.url, headers, expected, { timeoutMs: 100, intervalMs: 10 }),
      /still missing: GET \/api\/datasources: ECONNREFUSED/,
    );
  });

  it("refuses a deadline or interval that is not a positive number, naming the key and value", () => {
    assert.throws(() => checkWaitOptions({ timeoutMs: 0, intervalMs: 1 }), /timeoutMs=0: expected a positive number/);
    assert.throws(() => checkWaitOptions({ timeoutMs: 10, intervalMs: NaN }), /intervalMs=NaN: expected a positive/);
    assert.throws(
      () => checkWaitOptions({ timeoutMs: 10, intervalMs: 20 }),
      /intervalMs=20: expected at most timeoutMs \(10\)/,
    );
  });
});

describe("CI's Grafana check", { timeout: 20_000 }, () => {
  for (const variant of VARIANTS) {
    it(`passes against a Grafana that provisioned everything (${variant}), and fails on admin/admin`, async () => {
      const files = filesOf(variant);
      let state = provisioned(expectedProvisioning(files));
      const grafana = await fakeGrafana(() => state);
      try {
        const wait = { timeoutMs: 2_000, intervalMs: 10 };
        assert.deepEqual(await checkGrafana(grafana.url, PASSWORD, { files, wait }), []);
        state = { ...state, acceptsDefaultAdmin: true };
        const failures = await checkGrafana(grafana.url, PASSWORD, { files, wait });
        assert.deepEqual(failures, ["admin/admin: logged in (200); expected 401"]);
      } finally {
        await grafana.close();
      }
    });
  }

  it("fails with the waiter's message when provisioning never completes, and a stale Slack contact point counts", async () => {
    const files = filesOf("no-slack");
    const e = expectedProvisioning(files);
    const state: GrafanaState = {
      ...provisioned(e),
      contactPoints: [
        ...provisioned(e).contactPoints,
        { uid: SLACK_CONTACT_POINT.uid, name: SLACK_CONTACT_POINT.name, type: "slack" },
      ],
    };
    const grafana = await fakeGrafana(() => state);
    try {
      const failures = await checkGrafana(grafana.url, PASSWORD, { files, wait: { timeoutMs: 100, intervalMs: 10 } });
      assert.equal(failures.length, 1);
      assert.match(failures[0], /still missing: deletion of contact points titan-slack$/);
    } finally {
      await grafana.close();
    }
  });
});

describe("CI's second push: a retired rule leaves Grafana", { timeout: 20_000 }, () => {
  const retiredUids = RETIRED_ALERTS.map((r) => r.uid);

  it("ships the probe rule first, then retires it and a uid Grafana never had; nothing else differs", () => {
    for (const variant of VARIANTS) {
      const first = expectedProvisioning(filesOf(variant, "first"));
      const second = expectedProvisioning(filesOf(variant, "second"));
      assert.ok(first.ruleUids.includes(PROBE_RULE.uid), variant);
      assert.deepEqual(first.deletedRuleUids, retiredUids);
      assert.ok(!second.ruleUids.includes(PROBE_RULE.uid), variant);
      assert.deepEqual(second.deletedRuleUids, [...retiredUids, PROBE_RULE.uid, NEVER_SHIPPED_UID]);
      assert.deepEqual(
        second.ruleUids,
        alertDefinitions(sampleContext().config).map((d) => d.uid),
        "the second push's rules are the table's",
      );
      const differ = filesOf(variant, "first")
        .filter((f, i) => f.content !== filesOf(variant, "second")[i].content)
        .map((f) => f.path);
      assert.deepEqual(
        differ,
        [GRAFANA_PATHS.alertRules, GRAFANA_PATHS.contactPoints, GRAFANA_PATHS.notificationPolicies].sort(
          (a, b) => filesOf(variant).findIndex((f) => f.path === a) - filesOf(variant).findIndex((f) => f.path === b),
        ),
        "only the rules (one retired) and the alerting files (remediation off) change, so the push restarts Grafana",
      );
    }
  });

  it("keeps waiting while Grafana still lists the retired rule and the remediation contact points, and passes once they are gone", async () => {
    const files = filesOf("slack", "second");
    const first = provisioned(expectedProvisioning(filesOf("slack", "first")));
    let state = first;
    const grafana = await fakeGrafana(() => state);
    try {
      const failures = await checkGrafana(grafana.url, PASSWORD, { files, wait: { timeoutMs: 100, intervalMs: 10 } });
      assert.equal(failures.length, 1);
      // Grafana as the first push left it: the probe rule, the webhook contact points and their routes.
      assert.match(
        failures[0],
        new RegExp(
          `still missing: deletion of alert rules ${PROBE_RULE.uid}; deletion of contact points titan-remediation-web-1, titan-remediation-web-2; notification policy tree`,
        ),
      );
      const second = provisioned(expectedProvisioning(files));
      state = {
        ...first,
        rules: first.rules.filter((r) => r.uid !== PROBE_RULE.uid),
        contactPoints: first.contactPoints.filter((c) => c.type !== "webhook"),
        policy: second.policy,
      };
      assert.deepEqual(
        await checkGrafana(grafana.url, PASSWORD, { files, wait: { timeoutMs: 2_000, intervalMs: 10 } }),
        [],
      );
    } finally {
      await grafana.close();
    }
  });
});

describe("renderForValidation", () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const render = (variant: GrafanaVariant) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `render-${variant}-`));
    dirs.push(dir);
    renderForValidation(dir, variant);
    return dir;
  };

  for (const variant of VARIANTS) {
    it(`stages what the push installs on the Grafana host (${variant}), with the push's own install script`, () => {
      const dir = render(variant);
      const staging = path.join(dir, "grafana", "staging");
      const files = filesOf(variant);
      for (const f of files) assert.equal(fs.readFileSync(path.join(staging, f.path), "utf8"), f.content, f.path);
      // The unit's environment file, with a non-default admin whose password Grafana reads itself.
      const env = files.find((f) => f.path === GRAFANA_ENV_PATH)?.content ?? "";
      assert.ok(env.includes(`GF_SECURITY_ADMIN_USER="${ADMIN}"`) && ADMIN !== "admin", env);
      assert.ok(env.includes(`GF_SECURITY_ADMIN_PASSWORD="$__file{${GRAFANA_ADMIN_PASSWORD_PATH}}"`), env);
      assert.equal(
        fs.readFileSync(path.join(dir, "grafana", "install.sh"), "utf8"),
        `${installScript({ staging, files, ...GRAFANA_PUSH })}\n`,
      );
      // What the check reads back is what was rendered.
      assert.deepEqual(expectedProvisioning(readStagedGrafanaFiles(staging)), expectedProvisioning(files));
      // The second push: its own staged tree and install script.
      const secondStaging = path.join(dir, "grafana", "second", "staging");
      const second = filesOf(variant, "second");
      for (const f of second)
        assert.equal(fs.readFileSync(path.join(secondStaging, f.path), "utf8"), f.content, f.path);
      assert.equal(
        fs.readFileSync(path.join(dir, "grafana", "second", "install.sh"), "utf8"),
        `${installScript({ staging: secondStaging, files: second, ...GRAFANA_PUSH })}\n`,
      );
      assert.deepEqual(expectedProvisioning(readStagedGrafanaFiles(secondStaging)), expectedProvisioning(second));
      for (const p of [GRAFANA_DROP_IN_PATH, APT_PREFERENCES_PATH])
        assert.ok(fs.existsSync(path.join(dir, "grafana", "user-data", p)), `user data's ${p}`);
      assert.ok(
        fs.existsSync(path.join(dir, "loki", "config.yml")) && fs.existsSync(path.join(dir, "alloy", "config.alloy")),
      );
    });
  }

  it("writes fresh secrets in the push's stdin order, the webhook only with Slack, readable by the runner alone", () => {
    for (const variant of VARIANTS) {
      const dir = render(variant);
      const stdin = fs.readFileSync(path.join(dir, "grafana", "push-stdin"), "utf8");
      const lines = stdin.split("\n");
      assert.equal(lines.length, GRAFANA_STDIN_ORDER.length + 1, "one line each, then the final newline");
      const value = (k: (typeof GRAFANA_STDIN_ORDER)[number]) => lines[GRAFANA_STDIN_ORDER.indexOf(k)];
      assert.equal(value("adminPassword"), fs.readFileSync(path.join(dir, "grafana", "admin_password"), "utf8"));
      assert.ok(value("adminPassword").length >= 20 && value("secretKey").length >= 32);
      assert.equal(value("slackWebhookUrl") !== "", GRAFANA_VARIANTS[variant].slackWebhookConfigured, variant);
      for (const f of ["push-stdin", "admin_password"])
        assert.equal(fs.statSync(path.join(dir, "grafana", f)).mode & 0o777, 0o600, f);
    }
    const [a, b] = [render("slack"), render("slack")].map((d) =>
      fs.readFileSync(path.join(d, "grafana", "push-stdin"), "utf8"),
    );
    assert.notEqual(a, b, "no fixed secret");
  });

  it("boots the amp variant with the SigV4 data source on the same uid and the settings it needs, and only it", () => {
    const datasources = (v: GrafanaVariant) =>
      (
        YAML.parse(filesOf(v).find((f) => f.path === GRAFANA_PATHS.datasources)?.content ?? "") as {
          datasources: { uid: string; type: string; url: string; jsonData: Record<string, unknown> }[];
        }
      ).datasources.find((d) => d.type === "prometheus");
    const env = (v: GrafanaVariant) => filesOf(v).find((f) => f.path === GRAFANA_ENV_PATH)?.content ?? "";
    const amp = datasources("amp");
    assert.equal(amp?.uid, datasources("slack")?.uid);
    assert.equal(amp?.url, SAMPLE_AMP_ENDPOINT.replace(/\/$/, ""));
    assert.deepEqual(
      [amp?.jsonData.sigV4Auth, amp?.jsonData.sigV4AuthType, amp?.jsonData.sigV4Region],
      [true, "ec2_iam_role", "us-east-1"],
    );
    assert.match(env("amp"), /^GF_AUTH_SIGV4_AUTH_ENABLED="true"$/m);
    assert.match(env("amp"), /^GF_AWS_ALLOWED_AUTH_PROVIDERS="ec2_iam_role"$/m);
    for (const v of VARIANTS.filter((x) => !AMP_VARIANTS.includes(x))) {
      assert.equal(datasources(v)?.jsonData.sigV4Auth, undefined, v);
      assert.doesNotMatch(env(v), /SIGV4|GF_AWS_/, v);
    }
    // The dashboards and rules CI provisions are the slack variant's, byte for byte.
    const others = (v: GrafanaVariant) =>
      filesOf(v)
        .filter((f) => f.path !== GRAFANA_PATHS.datasources && f.path !== GRAFANA_ENV_PATH)
        .map((f) => [f.path, f.content]);
    assert.deepEqual(others("amp"), others("slack"));
  });

  it("renders the Slack contact point and its environment reference only in the Slack variant", () => {
    const contacts = (v: GrafanaVariant) =>
      filesOf(v).find((f) => f.path === GRAFANA_PATHS.contactPoints)?.content ?? "";
    assert.ok(contacts("slack").includes(`\${${SLACK_WEBHOOK_ENV}}`));
    assert.ok(!contacts("no-slack").includes(SLACK_WEBHOOK_ENV));
  });

  it("refuses an unknown variant, naming it and the choices", () => {
    assert.equal(grafanaVariant("no-slack"), "no-slack");
    assert.throws(() => grafanaVariant("slak"), /--grafana-variant="slak": expected one of slack, no-slack/);
    const cli = spawnSync(
      process.execPath,
      [path.join(__dirname, "../tools/validate/renderForValidation.js"), os.tmpdir(), "--grafana-variant=none"],
      {
        encoding: "utf8",
      },
    );
    assert.notEqual(cli.status, 0);
    assert.match(cli.stderr, /--grafana-variant="none": expected one of slack, no-slack/);
  });
});

describe("the package facts CI installs Grafana with", () => {
  it("come from the versions table and Grafana's repository record", () => {
    const env = grafanaAptEnv();
    // By name: the apt preferences user data wrote choose the patch or a security re-issue.
    assert.equal(env.GRAFANA_PACKAGE_SPEC, "grafana");
    assert.equal(env.GRAFANA_PACKAGE_VERSIONS, acceptedPins(VERSIONS.grafana).join(" "));
    assert.equal(env.GRAFANA_APT_KEY_FINGERPRINT, GRAFANA_APT.keyFingerprint);
    assert.equal(env.GRAFANA_APT_KEY_URL, GRAFANA_APT.keyUrl);
    assert.equal(
      env.GRAFANA_APT_SOURCE,
      `deb [signed-by=${GRAFANA_APT.keyringPath}] https://apt.grafana.com stable main`,
    );
    const cli = spawnSync(process.execPath, [path.join(__dirname, "../tools/validate/grafanaApt.js")], {
      encoding: "utf8",
    });
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(cli.stdout, envLines(env));
  });

  it("refuses a value that would add a line to $GITHUB_ENV", () => {
    assert.throws(() => envLines({ A: "x\nB=y" }), /A="x\\nB=y": expected a single line/);
    assert.throws(() => envLines({ "a-b": "x" }), /environment key "a-b"/);
  });
});

describe("the validate-configs workflow's Grafana job", () => {
  const text = fs.readFileSync(path.join(ROOT, ".github/workflows/validate-configs.yml"), "utf8");
  const job = (
    YAML.parse(text) as {
      jobs: Record<
        string,
        { strategy?: { matrix?: { variant?: string[] } }; steps: { name?: string; run?: string }[] }
      >;
    }
  ).jobs.grafana;
  const runs = job.steps.map((s) => s.run ?? "").join("\n");

  it("boots both variants the program renders", () => {
    assert.deepEqual(job.strategy?.matrix?.variant, VARIANTS);
    assert.match(runs, /renderForValidation\.js "\$RENDERED" "--grafana-variant=\$VARIANT"/);
  });

  it("installs the package, replays the push's install script with its stdin, and starts no container", () => {
    assert.match(runs, /node build\/tools\/validate\/grafanaApt\.js >>"\$GITHUB_ENV"/);
    for (const key of Object.keys(grafanaAptEnv())) assert.ok(runs.includes(`"$${key}"`), `the job uses ${key}`);
    assert.match(runs, /bash "\$RENDERED\/grafana\/install\.sh" <"\$RENDERED\/grafana\/push-stdin"/);
    assert.match(runs, /checkGrafana\.js "\$RENDERED\/grafana\/admin_password" "\$RENDERED\/grafana\/staging"/);
    // Then the second push, checked against its own files, before the log check reads the log.
    const second = runs.indexOf('bash "$RENDERED/grafana/second/install.sh" <"$RENDERED/grafana/push-stdin"');
    const secondCheck = runs.indexOf(
      'checkGrafana.js "$RENDERED/grafana/admin_password" "$RENDERED/grafana/second/staging"',
    );
    assert.ok(
      second > runs.indexOf('"$RENDERED/grafana/staging"') && secondCheck > second,
      "second push after the first check",
    );
    assert.ok(secondCheck < runs.indexOf("journalctl -u grafana-server"), "before the log is read");
    assert.doesNotMatch(
      runs,
      /docker|__FILE|grafana\/grafana:/,
      "the package's binary under systemd, not the image's run.sh",
    );
    assert.doesNotMatch(runs, /api\/health/, "a healthy /api/health proves nothing about provisioning");
  });

  it("passes shellcheck in every run step", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-job-"));
    try {
      job.steps.forEach((s, i) => {
        if (!s.run) return;
        const file = path.join(dir, `step-${i}.sh`);
        fs.writeFileSync(file, `#!/bin/bash\n${s.run}`);
        const r = spawnSync("shellcheck", ["--severity=style", file], { encoding: "utf8" });
        assert.equal(r.error, undefined, "shellcheck must be installed");
        assert.equal(r.status, 0, `${s.name ?? `step ${i}`}:\n${r.stdout}`);
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("its install step, run here with a throwaway key", () => {
    const step = job.steps.find((s) => /^Install the pinned grafana package/.test(s.name ?? ""));
    let tmp = "";
    let fingerprint = "";
    before(() => {
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), "grafana-apt-"));
      const gnupg = path.join(tmp, "gnupg");
      fs.mkdirSync(gnupg, { mode: 0o700 });
      const gpg = (...args: string[]) => {
        const r = spawnSync("gpg", ["--homedir", gnupg, "--batch", ...args], { encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
        return r.stdout;
      };
      gpg("--passphrase", "", "--quick-gen-key", "ci test <ci@example.invalid>", "ed25519", "sign", "never");
      fs.writeFileSync(path.join(tmp, "key.asc"), gpg("--armor", "--export"));
      fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(gpg("--with-colons", "--list-keys"))?.[1] ?? "";
      // Stand-ins for what needs root or a package system; each logs its call.
      const bin = path.join(tmp, "bin");
      fs.mkdirSync(bin);
      const stub = (name: string, body: string) =>
        fs.writeFileSync(path.join(bin, name), `#!/bin/bash\necho "${name} $*" >>"$STUB_LOG"\n${body}\n`, {
          mode: 0o755,
        });
      stub("sudo", 'if [ "$1" = tee ]; then cat >/dev/null; fi');
      stub("dpkg-query", 'printf %s "$STUB_INSTALLED"');
      stub("systemctl", 'if [ "$1" = is-active ]; then exit 3; fi');
    });
    after(() => fs.rmSync(tmp, { recursive: true, force: true }));

    const run = (env: Record<string, string>) => {
      const log = path.join(tmp, `log-${Math.random().toString(36).slice(2)}`);
      fs.writeFileSync(log, "");
      const result = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", step?.run ?? "exit 99"], {
        encoding: "utf8",
        env: {
          PATH: `${path.join(tmp, "bin")}:${process.env.PATH ?? ""}`,
          HOME: tmp,
          GNUPGHOME: path.join(tmp, "gnupg"),
          STUB_LOG: log,
          STUB_INSTALLED: VERSIONS.grafana.aptPin,
          ...grafanaAptEnv(),
          GRAFANA_APT_KEY_URL: `file://${path.join(tmp, "key.asc")}`,
          GRAFANA_APT_KEY_FINGERPRINT: fingerprint,
          ...env,
        },
      });
      return { ...result, calls: fs.readFileSync(log, "utf8") };
    };

    it("installs exactly the pinned package when the key has the recorded fingerprint", () => {
      assert.ok(step?.run, "the step exists");
      const r = run({});
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.calls, /sudo DEBIAN_FRONTEND=noninteractive apt-get install .* grafana\n/);
      assert.match(r.calls, /sudo gpg --batch --yes --dearmor -o \/etc\/apt\/keyrings\/grafana\.gpg/);
      assert.match(r.calls, /sudo systemctl enable grafana-server/);
    });

    it("refuses a key with another fingerprint before touching the system", () => {
      const r = run({ GRAFANA_APT_KEY_FINGERPRINT: GRAFANA_APT.keyFingerprint });
      assert.equal(r.status, 1);
      assert.match(
        r.stdout,
        new RegExp(`fingerprint '${fingerprint}', expected ${GRAFANA_APT.keyFingerprint}: refusing it`),
      );
      assert.doesNotMatch(r.calls, /sudo/, "nothing installed");
    });

    it("fails when dpkg reports another version than the pin or its security re-issues", () => {
      const v = VERSIONS.grafana.aptPin;
      for (const other of ["12.0.0", `${v}-1`, `${v}.1`, `${v}+security-1`]) {
        const r = run({ STUB_INSTALLED: other });
        assert.equal(r.status, 1, other);
        assert.match(
          r.stdout,
          new RegExp(`grafana is ${other.replace(/[.+]/g, "\\$&")}, pinned ${v.replace(/\./g, "\\.")} `),
        );
      }
    });

    it("accepts a security re-issue of the pinned patch", () => {
      const v = VERSIONS.grafana.aptPin;
      for (const reissue of [`${v}-01`, `${v}+security-02`]) {
        const r = run({ STUB_INSTALLED: reissue });
        assert.equal(r.status, 0, `${reissue}: ${r.stdout}${r.stderr}`);
      }
    });
  });
});
