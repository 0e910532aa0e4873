import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressPlan, type HostSlot } from "../facts/addressing";
import { loadConfig } from "../infra/config";
import {
  JOURNAL_STREAM_LABELS,
  JOURNAL_UNIT_COLLAPSE,
  TITAN_LOG_RULES,
  alloyPipeline,
  hostLabels,
  parseLogfmt,
  titanLabels,
} from "../templates/alloy/config";
import type { AlloyBlock, AlloyStatement } from "../templates/alloy/syntax";
import type { TemplateContext } from "../templates/types";
import { journalEntryLabels } from "./support/journalTarget";
import { anchored, expand, relabel, type RelabelRule } from "./support/relabel";

describe("relabel evaluator (Prometheus' semantics as Alloy runs them)", () => {
  it("anchors the regex at both ends, as Alloy compiles it", () => {
    assert.equal(anchored("a.c").test("abc"), true);
    assert.equal(anchored("a.c").test("xabc"), false);
    assert.equal(anchored("a|b").test("ab"), false); // ^(?:a|b)$, not ^a|b$
    const rule = { source_labels: ["u"], regex: "session", target_label: "t", replacement: "x" };
    assert.deepEqual(relabel({ u: "session-1.scope" }, [rule]), { u: "session-1.scope" });
  });

  it("applies Alloy's defaults: replace, `(.*)`, `$1`, separator `;`", () => {
    assert.deepEqual(relabel({ a: "x", b: "y" }, [{ source_labels: ["a", "b"], target_label: "t" }]), {
      a: "x",
      b: "y",
      t: "x;y",
    });
    // A missing source label reads as "", and an empty result deletes the target.
    assert.deepEqual(relabel({ t: "old" }, [{ source_labels: ["missing"], target_label: "t" }]), {});
  });

  it("expands replacements like Go's Regexp.Expand", () => {
    const m = /^(?:(a)(b)(?<name>c))$/u.exec("abc");
    assert.ok(m);
    assert.equal(expand("$1-$2", m), "a-b");
    assert.equal(expand("${1}x", m), "ax");
    assert.equal(expand("$1x", m), ""); // the group named "1x", which does not exist
    assert.equal(expand("$$1", m), "$1");
    assert.equal(expand("$9", m), "");
    assert.equal(expand("${name}", m), "c");
    assert.equal(expand("cost $", m), "cost $");
  });

  it("drops, keeps and drops or keeps label names", () => {
    assert.equal(relabel({ u: "x" }, [{ source_labels: ["u"], regex: "x", action: "drop" }]), undefined);
    assert.deepEqual(relabel({ u: "xy" }, [{ source_labels: ["u"], regex: "x", action: "drop" }]), { u: "xy" });
    assert.equal(relabel({ u: "y" }, [{ source_labels: ["u"], regex: "x", action: "keep" }]), undefined);
    assert.deepEqual(relabel({ a_1: "1", a_2: "2", b: "3" }, [{ regex: "a_.*", action: "labeldrop" }]), { b: "3" });
    assert.deepEqual(relabel({ a_1: "1", b: "3" }, [{ regex: "a_.*", action: "labelkeep" }]), { a_1: "1" });
  });

  it("refuses what it would get wrong or what Alloy refuses, naming the rule", () => {
    assert.throws(() => anchored("(?=a)a"), /lookaround/);
    assert.throws(() => anchored("(a)\\1"), /backreference/);
    assert.throws(() => anchored("(?P<x>a)"), /named group/);
    assert.throws(() => anchored("(a"), /does not compile/);
    assert.throws(() => relabel({}, [{ action: "hashmod", target_label: "t" }]), /rule 0: action "hashmod"/);
    assert.throws(() => relabel({}, [{ source_labels: ["a"] }]), /rule 0: replace needs a target_label/);
  });
});

function context(): TemplateContext {
  const all: Record<string, string> = { allowedCidrs: '["203.0.113.7/32"]', "aws:region": "us-east-1" };
  const config = loadConfig(
    { get: (key) => all[key], isSecret: () => undefined },
    { project: "titan-observability", stack: "dev" },
  );
  return { config, plan: addressPlan(config.vpcCidr, config.webCount), lokiBucket: "bucket" };
}

const isBlock = (s: AlloyStatement): s is AlloyBlock => s.kind === "block";
const STRING_FIELDS = new Set(["separator", "regex", "target_label", "replacement", "action"]);

/** The rule blocks of a rendered `loki.relabel` component, as the evaluator's rules. */
function renderedRules(component: AlloyBlock): RelabelRule[] {
  return component.body.filter(isBlock).map((rule) => {
    const out: Record<string, string | readonly string[]> = {};
    for (const s of rule.body) {
      if (s.kind !== "attribute") continue;
      const v = s.value;
      const ok =
        s.name === "source_labels"
          ? Array.isArray(v) && v.every((x) => typeof x === "string")
          : STRING_FIELDS.has(s.name) && typeof v === "string";
      if (!ok) throw new Error(`rule attribute ${s.name} = ${JSON.stringify(v)} is not evaluated here`);
      out[s.name] = v as string | readonly string[];
    }
    return out;
  });
}

describe("journal `unit` label", () => {
  const ctx = context();
  const host = ctx.plan.hosts.find((h): h is HostSlot => h.role === "web");
  assert.ok(host);
  const model = alloyPipeline(ctx, host);
  const find = (name: string, label: string): AlloyBlock => {
    const found = model.filter(isBlock).find((b) => b.name === name && b.label === label);
    assert.ok(found, `no ${name} "${label}"`);
    return found;
  };
  const rules = renderedRules(find("loki.relabel", "journal"));
  const staticLabels = find("loki.process", "journal")
    .body.filter(isBlock)
    .find((b) => b.name === "stage.static_labels")
    ?.body.find((s) => s.kind === "attribute" && s.name === "values");
  assert.ok(staticLabels && staticLabels.kind === "attribute");

  /** The labels a journal entry reaches Loki with: the source's labels, then the static stage. */
  const sent = (fields: Record<string, string>): Record<string, string> | undefined => {
    const labels = journalEntryLabels({ MESSAGE: "m", ...fields }, "loki.source.journal.system", rules);
    return labels && { ...labels, ...(staticLabels.value as Record<string, string>) };
  };
  const unitOf = (unit: string): string | undefined => sent({ _SYSTEMD_UNIT: unit })?.unit;

  it("keeps the unit of every service the stack runs, and of the system's fixed units", () => {
    for (const unit of ["titan.service", "alloy.service", "ssh.service", "user@1000.service", "init.scope"]) {
      assert.equal(unitOf(unit), unit);
    }
  });

  it("maps login sessions and systemd-run units to one value per kind", () => {
    const [session, run] = JOURNAL_UNIT_COLLAPSE.map((c) => c.unit);
    for (const unit of ["session-12.scope", "session-1.scope", "session-c3.scope"]) assert.equal(unitOf(unit), session);
    for (const unit of [
      "run-r3f2.service",
      "run-u7.scope",
      "run-u7.service",
      "run-p1234-i5678.service",
      `run-r${"0123456789abcdef".repeat(2)}.service`,
    ]) {
      assert.equal(unitOf(unit), run, unit);
    }
  });

  it("leaves units that only look alike (the regexes are anchored)", () => {
    for (const unit of ["xsession-1.scope", "session-1.scope.bak", "run-backup.service", "prerun-u7.service"]) {
      assert.equal(unitOf(unit), unit);
    }
  });

  it("grows by no value however many pushes log in and run", () => {
    const units = new Set<string | undefined>();
    for (let n = 1; n <= 500; n += 1) {
      units.add(unitOf(`session-${n}.scope`));
      units.add(unitOf(`run-u${n}.service`));
      units.add(unitOf(`run-r${n.toString(16)}.scope`));
    }
    assert.deepEqual([...units].sort(), JOURNAL_UNIT_COLLAPSE.map((c) => c.unit).sort());
  });

  it("sends an entry without a unit (the kernel's) without a unit label, and only contract labels", () => {
    const kernel = sent({ _TRANSPORT: "kernel", PRIORITY: "3" });
    assert.ok(kernel);
    assert.equal(kernel.unit, undefined);
    for (const labels of [kernel, sent({ _SYSTEMD_UNIT: "session-9.scope", _PID: "4242" })]) {
      assert.ok(labels);
      for (const name of Object.keys(labels)) {
        assert.ok((JOURNAL_STREAM_LABELS as readonly string[]).includes(name), `${name} is not a journal label`);
      }
    }
  });

  it("gives every collapsed value a name no real unit can have (no unit-type suffix)", () => {
    for (const { unit } of JOURNAL_UNIT_COLLAPSE) assert.doesNotMatch(unit, /\.[a-z]+$/);
  });
});

/**
 * A LogQL stream selector's matchers, as stage.match reads them (grafana/alloy
 * internal/component/loki/process/stages/match.go processLogQL: every matcher must hold; a
 * missing label reads as ""). Only what the rendered selector uses: `=`, `!=`, `=~`, `!~`.
 */
function selectorMatches(selector: string, labels: Readonly<Record<string, string>>): boolean {
  const body = /^\{(.*)\}$/.exec(selector)?.[1];
  if (body === undefined) throw new Error(`not a stream selector: ${selector}`);
  const matcher = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
  let matched = true;
  let count = 0;
  for (let i = 0; i < body.length; count++) {
    matcher.lastIndex = i;
    const m = matcher.exec(body);
    if (!m) throw new Error(`cannot read matcher at ${i} of ${selector}`);
    i = matcher.lastIndex;
    const [, name, op, raw] = m;
    const value = JSON.parse(`"${raw}"`) as string;
    const have = labels[name] ?? "";
    const ok =
      op === "=" ? have === value : op === "!=" ? have !== value : anchored(value).test(have) === (op === "=~");
    matched &&= ok;
  }
  if (count === 0) throw new Error(`empty selector ${selector}`);
  return matched;
}

describe("app `level` label", () => {
  const ctx = context();
  const host = ctx.plan.hosts.find((h): h is HostSlot => h.role === "web");
  assert.ok(host);
  const titan = alloyPipeline(ctx, host)
    .filter(isBlock)
    .find((b) => b.name === "loki.process" && b.label === "titan");
  assert.ok(titan);
  const stages = titan.body.filter(isBlock);
  const attrOf = (b: AlloyBlock | undefined, name: string) => {
    const a = b?.body.find((s) => s.kind === "attribute" && s.name === name);
    assert.ok(a && a.kind === "attribute", `no ${name}`);
    return a.value;
  };
  const match = stages.find((b) => b.name === "stage.match");
  const selector = attrOf(match, "selector");
  assert.equal(typeof selector, "string");
  const override = attrOf(
    match?.body.filter(isBlock).find((b) => b.name === "stage.static_labels"),
    "values",
  ) as Record<string, string>;

  /** The level label a line reaches Loki with, through the rendered stages in their order. */
  const rendered = (line: string): string | undefined => {
    const fields = parseLogfmt(line);
    const extracted = Object.keys(
      attrOf(
        stages.find((b) => b.name === "stage.logfmt"),
        "mapping",
      ) as object,
    );
    const labels: Record<string, string> = {};
    for (const f of Object.keys(
      attrOf(
        stages.find((b) => b.name === "stage.labels"),
        "values",
      ) as object,
    ))
      if (extracted.includes(f) && fields[f] !== undefined && fields[f] !== "") labels[f] = fields[f];
    if (stages.indexOf(match!) < stages.findIndex((b) => b.name === "stage.labels"))
      throw new Error("stage.match runs before the level label exists");
    if (selectorMatches(selector as string, labels)) Object.assign(labels, override);
    return labels.level;
  };
  const line = (level?: string) => `ts=2026-12-06T05:00:00.000Z${level === undefined ? "" : ` level=${level}`} msg=hi`;

  it("keeps the levels the app writes", () => {
    for (const level of TITAN_LOG_RULES.levels) assert.equal(rendered(line(level)), level);
  });

  it("maps any other value to other, so the label stays bounded", () => {
    for (const level of ["debug", "WARN", "warn", "Error", "critical", "info2", "xinfo", "info|error", "fatal"])
      assert.equal(rendered(line(level)), TITAN_LOG_RULES.otherLevel, level);
    const values = new Set(Array.from({ length: 200 }, (_, n) => rendered(line(`level${n}`))));
    assert.deepEqual([...values], [TITAN_LOG_RULES.otherLevel]);
  });

  it("leaves a line without a level without the label", () => {
    assert.equal(rendered(line()), undefined);
  });

  it("agrees with titanLabels, which the end-to-end run checks real lines with", () => {
    const labels = hostLabels(ctx, host);
    for (const level of [...TITAN_LOG_RULES.levels, "debug", "WARN", undefined])
      assert.equal(titanLabels(line(level), "/var/log/titan/app.log", labels).level, rendered(line(level)), level);
  });
});
