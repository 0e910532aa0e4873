/** The post-deploy verification's checks against a fake Prometheus and Grafana. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatReport, verify, type Fetch, type VerificationSpec } from "../infra/verify/checks";

const spec: VerificationSpec = {
  prometheusUrl: "http://prom:9090",
  grafanaUrl: "http://graf:3000",
  grafanaUser: "admin",
  environment: "dev",
  targets: [
    { job: "node", instance: "p-dev-web-1", role: "web" },
    { job: "titan", instance: "p-dev-web-1", role: "web" },
  ],
  logMarker: { marker: "titan-verify-abc", job: "titan", hosts: ["p-dev-web-1"] },
  grafana: {
    datasourceUids: ["titan-prometheus", "titan-loki"],
    dashboardUids: ["titan-system"],
    ruleUids: ["titan-target-down"],
    contactPoint: "titan-slack",
  },
  timeoutMs: 300,
  intervalMs: 50,
};

type Routes = Record<string, unknown>;

function fakeFetch(routes: () => Routes, seen: string[] = []): Fetch {
  return (url, init) => {
    seen.push(`${url} ${init?.headers?.Authorization ?? ""}`);
    const path = new URL(url).pathname;
    const body = routes()[path];
    return Promise.resolve({
      ok: body !== undefined,
      status: body === undefined ? 404 : 200,
      json: () => Promise.resolve(body),
    });
  };
}

const target = (job: string, health = "up", role = "web") => ({
  labels: { job, instance: "p-dev-web-1", role, environment: "dev" },
  health,
  lastError: health === "up" ? "" : "connection refused",
});

function healthy(): Routes {
  return {
    "/api/v1/targets": { data: { activeTargets: [target("node"), target("titan")] } },
    "/api/datasources/proxy/uid/titan-loki/loki/api/v1/query_range": {
      data: {
        result: [
          { stream: { job: "titan", host: "p-dev-web-1", level: "info", filename: "/var/log/titan/verify.log" } },
        ],
      },
    },
    "/api/health": { database: "ok" },
    "/api/datasources/uid/titan-prometheus/health": { status: "OK" },
    "/api/datasources/uid/titan-loki/health": { status: "OK" },
    "/api/search": [{ uid: "titan-system" }],
    "/api/v1/provisioning/alert-rules": [{ uid: "titan-target-down" }],
    "/api/v1/provisioning/contact-points": [{ name: "titan-slack", type: "slack" }],
  };
}

describe("pipeline verification", () => {
  it("passes when every check holds, and reports each with its time", async () => {
    const seen: string[] = [];
    const report = await verify(spec, "pw", fakeFetch(healthy, seen));
    assert.equal(report.ok, true, formatReport(report));
    assert.deepEqual(
      report.checks.map((c) => c.name),
      [
        "prometheus targets up",
        "loki has each web host's marker line",
        "grafana health",
        "grafana data sources healthy",
        "grafana dashboards provisioned",
        "grafana alert rules provisioned",
        "slack contact point exists",
      ],
    );
    const loki = seen.find((s) => s.includes("query_range")) ?? "";
    assert.ok(
      decodeURIComponent(loki).includes('{job="titan", host="p-dev-web-1", environment="dev"} |= "titan-verify-abc"'),
    );
    assert.ok(
      loki.endsWith(`Basic ${Buffer.from("admin:pw").toString("base64")}`),
      "Loki is asked through Grafana, with auth",
    );
  });

  it("waits for a target that comes up within the deadline", async () => {
    let calls = 0;
    const routes = () => {
      calls += 1;
      const r = healthy();
      if (calls < 3) r["/api/v1/targets"] = { data: { activeTargets: [target("node"), target("titan", "down")] } };
      return r;
    };
    const report = await verify(spec, "pw", fakeFetch(routes));
    assert.equal(report.ok, true, formatReport(report));
  });

  it("fails with the reason when a target stays down, a label is wrong or a rule is missing", async () => {
    const routes = () => ({
      ...healthy(),
      "/api/v1/targets": { data: { activeTargets: [target("node", "up", "loki"), target("titan", "down")] } },
      "/api/v1/provisioning/alert-rules": [],
    });
    const report = await verify(spec, "pw", fakeFetch(routes));
    assert.equal(report.ok, false);
    const text = formatReport(report);
    assert.match(
      text,
      /FAIL prometheus targets up .*node\/p-dev-web-1 has role=loki.*titan\/p-dev-web-1 is down: connection refused/,
    );
    assert.match(text, /FAIL grafana alert rules provisioned .*missing alert rules titan-target-down/);
    assert.match(text, /^pipeline verification FAILED in/);
    assert.ok(report.seconds < 2, "bounded by the deadline");
  });

  it("reports a marker that never reached Loki and an HTTP error", async () => {
    const routes = () => {
      const r = healthy();
      r["/api/datasources/proxy/uid/titan-loki/loki/api/v1/query_range"] = { data: { result: [] } };
      delete r["/api/v1/provisioning/contact-points"];
      return r;
    };
    const report = await verify(spec, "pw", fakeFetch(routes));
    const text = formatReport(report);
    assert.match(text, /FAIL loki has each web host's marker line .*no marker line from p-dev-web-1/);
    assert.match(text, /FAIL slack contact point exists .*answered 404/);
  });
});
