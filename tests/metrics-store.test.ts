/**
 * metricsStore under mocks: with local (the default) no AMP workspace, no aps statement and no
 * Grafana profile exist; with amp the workspace is tagged and named after the stack, Prometheus
 * may only write to it and Grafana only query it, and only their pushes wait for it.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { AMP_QUERY_ACTIONS } from "../facts/metricsStore";
import type { RecordedResource } from "./support/mockProgram";
import { ofType, one, snapshot, update, type TimedSnapshot } from "./support/snapshots";

const WORKSPACE = "aws:amp/workspace:Workspace";
const POLICY = "aws:iam/rolePolicy:RolePolicy";
const PROFILE = "aws:iam/instanceProfile:InstanceProfile";
const INSTANCE = "aws:ec2/instance:Instance";
const WORKSPACE_ARN = "arn:aws:aps:us-east-1:123456789012:workspace/ws-metrics";

type Statement = { Sid: string; Effect: string; Action: string[]; Resource: string | string[] };
const statementsOf = (snap: TimedSnapshot, name: string) =>
  (JSON.parse(String(one(snap, POLICY, name).inputs.policy)) as { Statement: Statement[] }).Statement;
const dependsOn = (r: RecordedResource, name: string) => r.dependencies.some((d) => d.endsWith(`::${name}`));
const everyAction = (snap: TimedSnapshot) =>
  ofType(snap, POLICY).flatMap((p) => statementsOf(snap, p.name).flatMap((s) => s.Action));

describe("metricsStore=local (the default)", () => {
  let snap: TimedSnapshot;
  before(async () => {
    snap = await snapshot();
    assert.equal(snap.error, undefined, snap.error);
  });

  it("declares no AMP workspace, no aps statement and no Grafana profile", () => {
    assert.equal(ofType(snap, WORKSPACE).length, 0);
    assert.deepEqual(
      everyAction(snap).filter((a) => a.startsWith("aps:")),
      [],
    );
    assert.deepEqual(
      ofType(snap, PROFILE)
        .map((p) => p.name)
        .sort(),
      ["loki-profile", "prometheus-profile"],
    );
    assert.equal(one(snap, INSTANCE, "grafana").inputs.iamInstanceProfile, undefined);
    assert.equal(snap.outputs.metricsWorkspace, undefined);
  });

  it("is the same program as with metricsStore=local set explicitly", async () => {
    const explicit = await snapshot({ metricsStore: "local" });
    const shape = (s: TimedSnapshot) => s.resources.map((r) => [r.type, r.name, JSON.stringify(r.inputs)]).sort();
    assert.deepEqual(shape(explicit), shape(snap));
  });
});

describe("metricsStore=amp", () => {
  let snap: TimedSnapshot;
  before(async () => {
    snap = await snapshot({ metricsStore: "amp" }, { stack: "staging" });
    assert.equal(snap.error, undefined, snap.error);
  });

  it("creates one workspace named after the stack, with the stack's tags", () => {
    const [workspace] = ofType(snap, WORKSPACE);
    assert.equal(ofType(snap, WORKSPACE).length, 1);
    assert.equal(workspace.inputs.alias, "titan-observability-staging");
    assert.deepEqual(workspace.inputs.tags, {
      Name: "titan-observability-staging-metrics",
      Environment: "staging",
      Project: "titan-observability",
      ManagedBy: "pulumi",
      Role: "prometheus",
    });
    assert.equal(workspace.inputs.protect, undefined, "destroyed with the stack");
  });

  it("lets Prometheus write to that workspace only, beside its EC2 discovery", () => {
    assert.deepEqual(
      statementsOf(snap, "prometheus-policy").map((s) => [s.Effect, s.Action, s.Resource]),
      [
        ["Allow", ["ec2:DescribeAvailabilityZones", "ec2:DescribeInstances"], "*"],
        ["Allow", ["aps:RemoteWrite"], WORKSPACE_ARN],
      ],
    );
  });

  it("gives the Grafana host a profile that may only query the workspace", () => {
    assert.deepEqual(
      statementsOf(snap, "grafana-policy").map((s) => [s.Effect, s.Action, s.Resource]),
      [["Allow", [...AMP_QUERY_ACTIONS], WORKSPACE_ARN]],
    );
    assert.deepEqual([...AMP_QUERY_ACTIONS].sort(), [
      "aps:GetLabels",
      "aps:GetMetricMetadata",
      "aps:GetSeries",
      "aps:QueryMetrics",
    ]);
    assert.equal(one(snap, INSTANCE, "grafana").inputs.iamInstanceProfile, "grafana-profile-1234567");
    assert.equal(one(snap, INSTANCE, "web-1").inputs.iamInstanceProfile, undefined);
  });

  it("grants aps actions nowhere else and never on *", () => {
    for (const policy of ofType(snap, POLICY)) {
      for (const s of statementsOf(snap, policy.name).filter((st) => st.Action.some((a) => a.startsWith("aps:")))) {
        assert.equal(s.Resource, WORKSPACE_ARN, policy.name);
      }
    }
    assert.deepEqual(
      everyAction(snap)
        .filter((a) => a.startsWith("aps:"))
        .sort(),
      [...[...AMP_QUERY_ACTIONS, "aps:RemoteWrite"].sort()],
    );
  });

  it("makes only the Prometheus and Grafana pushes wait for the workspace", () => {
    const waits = (host: string) =>
      snap.resources.filter((r) => r.name.startsWith(`${host}-push`)).some((r) => dependsOn(r, "metrics"));
    assert.ok(waits("prometheus"), "prometheus push waits for the workspace");
    assert.ok(waits("grafana"), "grafana push waits for the workspace");
    for (const host of ["web-1", "loki"]) assert.ok(!waits(host), `${host} push is independent of it`);
  });

  it("exports the workspace's endpoints", () => {
    const out = snap.outputs.metricsWorkspace.value as Record<string, string>;
    assert.deepEqual(out, {
      arn: WORKSPACE_ARN,
      alias: "titan-observability-staging",
      region: "us-east-1",
      queryUrl: "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-metrics",
      remoteWriteUrl: "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-metrics/api/v1/remote_write",
    });
  });
});

describe("switching a running stack from local to amp", () => {
  let switched: TimedSnapshot;
  before(async () => {
    switched = await update({}, { metricsStore: "amp" });
    assert.equal(switched.error, undefined, switched.error);
  });

  it("replaces no host: the Grafana instance takes its new profile in place", () => {
    for (const instance of ofType(switched, INSTANCE)) {
      assert.notEqual(instance.action, "replace", instance.name);
      assert.equal(instance.action, instance.name === "grafana" ? "update" : "same", instance.name);
    }
    assert.equal(one(switched, WORKSPACE, "metrics").action, "create");
  });

  it("pushes again to Prometheus and Grafana only", () => {
    const install = (host: string) => one(switched, "command:remote:Command", `${host}-push-install`);
    for (const host of ["prometheus", "grafana"]) assert.notEqual(install(host).action, "same", host);
    for (const host of ["web-1", "loki"]) assert.equal(install(host).action, "same", host);
  });
});

describe("switching a running stack from amp back to local", () => {
  let back: TimedSnapshot;
  before(async () => {
    back = await update({ metricsStore: "amp" }, {});
    assert.equal(back.error, undefined, back.error);
  });

  it("declares no workspace and no Grafana profile (the engine deletes them), replaces no host", () => {
    assert.equal(ofType(back, WORKSPACE).length, 0);
    assert.ok(!ofType(back, PROFILE).some((p) => p.name === "grafana-profile"));
    for (const instance of ofType(back, INSTANCE)) assert.notEqual(instance.action, "replace", instance.name);
  });

  it("pushes again to Prometheus (which removes the relay) and Grafana only", () => {
    const install = (host: string) => one(back, "command:remote:Command", `${host}-push-install`);
    for (const host of ["prometheus", "grafana"]) assert.notEqual(install(host).action, "same", host);
    for (const host of ["web-1", "loki"]) assert.equal(install(host).action, "same", host);
    assert.match(String(install("prometheus").inputs.create), /removed titan-amp-relay/);
  });

  it("removes the relay only after Prometheus restarted without remote_write (its queue flushed to it)", () => {
    const script = String(one(back, "command:remote:Command", "prometheus-push-install").inputs.create);
    const restart = script.indexOf("sudo systemctl restart prometheus");
    const removal = script.indexOf("systemctl disable --quiet --now titan-amp-relay.service");
    assert.ok(restart > 0 && removal > restart, `restart at ${restart}, relay removal at ${removal}`);
  });
});
