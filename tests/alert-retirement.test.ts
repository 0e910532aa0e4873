/**
 * Retired alert rules (issue 17, item 4): Grafana's file provisioning never deletes a rule that
 * is merely left out of the file, so every uid the stack ever shipped must be live or listed in
 * RETIRED_ALERTS, and the rules file must ask Grafana to delete the retired ones.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import YAML from "yaml";
import {
  alertDefinitions,
  checkRetiredAlerts,
  RETIRED_ALERTS,
  type AlertDefinition,
  type RetiredAlert,
} from "../templates/alerts";
import { GRAFANA_ORG_ID, GRAFANA_PATHS, RULE_UID_PATTERN } from "../templates/grafana";
import { renderHostFiles } from "../templates/index";
import { ROOT } from "./support/files";
import { testContext } from "./support/render";

const ctx = testContext({ webCount: "2" });
const grafanaHost = ctx.plan.hosts.find((h) => h.role === "grafana");
if (!grafanaHost) throw new Error("the test plan has no grafana host");

/** The rendered rules file, parsed. */
function rulesFile(changes?: { retired?: readonly RetiredAlert[] }) {
  const file = renderHostFiles(ctx, grafanaHost!, { slackWebhookConfigured: true, alertRuleChanges: changes }).find(
    (f) => f.path === GRAFANA_PATHS.alertRules,
  );
  if (!file) throw new Error(`no ${GRAFANA_PATHS.alertRules} rendered`);
  return YAML.parse(file.content) as {
    groups: { rules: { uid: string }[] }[];
    deleteRules?: { orgId: number; uid: string }[];
  };
}

const retiredEntry = (uid: string): RetiredAlert => ({
  uid,
  name: "OldRule",
  retired: "2026-12-06",
  why: "replaced in a test",
});

/** The golden rules file's path (where tests/golden.test.ts keeps what the Grafana host receives). */
const GOLDEN_RULES = `tests/golden/grafana${GRAFANA_PATHS.alertRules}`;

const git = (...args: string[]) => execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8" });

/**
 * Every alert uid in every committed version of any golden Grafana alerting file: what the
 * stack has shipped, as the repository's history recorded it.
 */
function shippedUids(): Map<string, string> {
  const log = git("log", "--format=%H", "--name-only", "--", ":(glob)tests/golden/**/provisioning/alerting/*.yaml");
  const shipped = new Map<string, string>();
  let commit = "";
  for (const line of log.split("\n")) {
    if (/^[0-9a-f]{40}$/.test(line)) commit = line;
    else if (line.trim() !== "") {
      let content: string;
      try {
        content = git("show", `${commit}:${line}`);
      } catch {
        continue; // the commit deleted it; the commit before showed its last content
      }
      const doc = YAML.parse(content) as { groups?: { rules?: { uid?: unknown }[] }[] } | null;
      for (const g of doc?.groups ?? [])
        for (const r of g.rules ?? [])
          if (typeof r.uid === "string" && !shipped.has(r.uid)) shipped.set(r.uid, `${commit.slice(0, 10)}:${line}`);
    }
  }
  return shipped;
}

/** Shipped uids that are neither live nor retired: each would stay in a running Grafana for ever. */
function forgotten(
  shipped: ReadonlyMap<string, string>,
  live: readonly Pick<AlertDefinition, "uid">[],
  retired: readonly RetiredAlert[],
): string[] {
  const known = new Set([...live.map((d) => d.uid), ...retired.map((r) => r.uid)]);
  return [...shipped].filter(([uid]) => !known.has(uid)).map(([uid, where]) => `${uid} (shipped in ${where})`);
}

describe("retired alert rules", () => {
  it("are deleted by the rules file, in Grafana's deleteRules shape, after the group", () => {
    const retired = [retiredEntry("titan-old-rule"), retiredEntry("titan-renamed-rule")];
    const doc = rulesFile({ retired });
    assert.deepEqual(doc.deleteRules, [
      { orgId: GRAFANA_ORG_ID, uid: "titan-old-rule" },
      { orgId: GRAFANA_ORG_ID, uid: "titan-renamed-rule" },
    ]);
    assert.equal(doc.groups[0].rules.length, alertDefinitions(ctx.config).length, "the live rules stay");
  });

  it("render as the table's list by default, and no deleteRules key while it is empty", () => {
    const doc = rulesFile();
    assert.deepEqual(
      (doc.deleteRules ?? []).map((d) => d.uid),
      RETIRED_ALERTS.map((r) => r.uid),
    );
    if (RETIRED_ALERTS.length === 0) assert.ok(!("deleteRules" in doc));
  });

  it("never name a live uid (that rule would be created and deleted on every start)", () => {
    checkRetiredAlerts(alertDefinitions(ctx.config), RETIRED_ALERTS);
    for (const r of RETIRED_ALERTS) assert.match(r.uid, RULE_UID_PATTERN, r.uid);
    const live = alertDefinitions(ctx.config)[0].uid;
    assert.throws(
      () => rulesFile({ retired: [retiredEntry(live)] }),
      new RegExp(`retired alert uid "${live}" is also a live definition`),
    );
  });

  it("refuse a repeated entry, a malformed date or an empty reason, naming the uid", () => {
    const live = alertDefinitions(ctx.config);
    assert.throws(
      () => checkRetiredAlerts(live, [retiredEntry("titan-x"), retiredEntry("titan-x")]),
      /retired alert uid "titan-x" is listed twice/,
    );
    assert.throws(
      () => checkRetiredAlerts(live, [{ ...retiredEntry("titan-x"), retired: "06.12.2026" }]),
      /retired alert titan-x: retired="06\.12\.2026", expected a date YYYY-MM-DD/,
    );
    assert.throws(
      () => checkRetiredAlerts(live, [{ ...retiredEntry("titan-x"), why: " " }]),
      /retired alert titan-x: why is empty/,
    );
    assert.throws(() => rulesFile({ retired: [retiredEntry("not a uid")] }), /alert rule uid "not a uid" must be/);
  });
});

describe("every alert uid the repository ever shipped", () => {
  const shipped = shippedUids();

  it("is read from the history of the golden rules file", () => {
    // At least the committed golden file: every live uid that has been committed is in it.
    const committed = YAML.parse(git("show", `HEAD:${GOLDEN_RULES}`)) as { groups: { rules: { uid: string }[] }[] };
    for (const r of committed.groups.flatMap((g) => g.rules)) assert.ok(shipped.has(r.uid), r.uid);
    assert.ok(shipped.size >= 14, `only ${shipped.size} uids found`);
  });

  it("is live or retired", () => {
    assert.deepEqual(forgotten(shipped, alertDefinitions(ctx.config), RETIRED_ALERTS), []);
  });

  it("would be caught if a rule left the table without being retired", () => {
    const [gone, ...rest] = alertDefinitions(ctx.config);
    assert.match(forgotten(shipped, rest, RETIRED_ALERTS).join("\n"), new RegExp(`^${gone.uid} \\(shipped in `));
    assert.deepEqual(forgotten(shipped, rest, [...RETIRED_ALERTS, retiredEntry(gone.uid)]), []);
  });
});
