import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addressPlan, type HostSlot } from "../facts/addressing";
import { loadConfig } from "../infra/config";
import { SERVICES } from "../facts/topology";
import {
  ALLOY_CONFIG_PATH,
  ALLOY_DEFAULTS_PATH,
  JOURNAL_STREAM_LABELS,
  LOKI_LABELS,
  TITAN_LOG_RULES,
  TITAN_STREAM_LABELS,
  alloyPipeline,
  hostLabels,
  lokiPushUrl,
  parseLogfmt,
  renderAlloyFiles,
  titanLabels,
} from "../templates/alloy/config";
import {
  AlloyExpr,
  attr,
  block,
  comment,
  expr,
  quoteString,
  renderAlloy,
  renderValue,
  type AlloyBlock,
  type AlloyStatement,
  type AlloyValue,
} from "../templates/alloy/syntax";
import { addressOf, type TemplateContext } from "../templates/types";

function context(values: Record<string, string> = {}): TemplateContext {
  const all: Record<string, string> = { allowedCidrs: '["203.0.113.7/32"]', "aws:region": "us-east-1", ...values };
  const config = loadConfig(
    { get: (key) => all[key], isSecret: () => undefined },
    { project: "titan-observability", stack: "dev" },
  );
  return { config, plan: addressPlan(config.vpcCidr, config.webCount), lokiBucket: "bucket" };
}

const webHost = (ctx: TemplateContext, n = 1): HostSlot => {
  const host = ctx.plan.hosts.find((h) => h.name === `web-${n}`);
  assert.ok(host);
  return host;
};

/** Every block of the model, depth first, with its parent chain. */
function blocks(statements: readonly AlloyStatement[]): AlloyBlock[] {
  return statements.flatMap((s) => (s.kind === "block" ? [s, ...blocks(s.body)] : []));
}
const component = (statements: readonly AlloyStatement[], name: string, label: string): AlloyBlock => {
  const found = statements.find((s): s is AlloyBlock => s.kind === "block" && s.name === name && s.label === label);
  assert.ok(found, `no ${name} "${label}"`);
  return found;
};
const child = (b: AlloyBlock, name: string): AlloyBlock => {
  const found = b.body.find((s): s is AlloyBlock => s.kind === "block" && s.name === name);
  assert.ok(found, `no ${name} in ${b.name}`);
  return found;
};
const value = (b: AlloyBlock, name: string): AlloyValue => {
  const found = b.body.find((s) => s.kind === "attribute" && s.name === name);
  assert.ok(found && found.kind === "attribute", `no ${name} in ${b.name}`);
  return found.value;
};
const refs = (v: AlloyValue): string[] =>
  (Array.isArray(v) ? (v as AlloyValue[]) : [v]).map((x) => {
    assert.ok(x instanceof AlloyExpr, `not a reference: ${JSON.stringify(x)}`);
    return x.text;
  });

describe("Alloy syntax renderer", () => {
  it("quotes and escapes strings: quotes, backslashes, newlines, tabs and control characters", () => {
    assert.equal(quoteString("plain"), '"plain"');
    assert.equal(quoteString('say "hi"'), '"say \\"hi\\""');
    assert.equal(quoteString("C:\\logs\\n"), '"C:\\\\logs\\\\n"');
    assert.equal(quoteString("a\nb\r\tc"), '"a\\nb\\r\\tc"');
    assert.equal(quoteString("bell\u0007del\u007f"), '"bell\\u0007del\\u007f"');
    assert.equal(quoteString("ünïcode ✓"), '"ünïcode ✓"');
    for (const s of ['"', "\\", "\\n", "a\nb", '\\"', "x\u0000y", "tab\tend", "\u2028", "${not.an.expr}"]) {
      const q = quoteString(s);
      assert.equal(JSON.parse(q), s, `round trip of ${JSON.stringify(s)}`);
      assert.ok(!/[\n\r]/.test(q), "a string literal stays on one line");
    }
  });

  it("prints every value kind", () => {
    assert.equal(renderValue(true), "true");
    assert.equal(renderValue(false), "false");
    assert.equal(renderValue(null), "null");
    assert.equal(renderValue(42), "42");
    assert.equal(renderValue(0.5), "0.5");
    assert.equal(renderValue([]), "[]");
    assert.equal(renderValue({}), "{}");
    assert.equal(renderValue(["a", 1, true]), '["a", 1, true]');
    assert.equal(renderValue(expr("loki.write.default.receiver")), "loki.write.default.receiver");
    assert.equal(renderValue(expr('sys.env("HOME")')), 'sys.env("HOME")');
    assert.equal(renderValue({ 'we"ird': "v", plain: 1 }), '{\n  "we\\"ird" = "v",\n  "plain" = 1,\n}');
    assert.equal(renderValue([{ a: "b" }]), '[\n  {\n    "a" = "b",\n  },\n]');
    assert.throws(() => renderValue(Number.NaN));
    assert.throws(() => renderValue(Infinity));
  });

  it("prints blocks with and without labels, nested, with comments", () => {
    const text = renderAlloy([
      comment("header"),
      block("loki.write", 'odd "label"', [block("endpoint", undefined, [attr("url", "http://x:3100/push")])]),
      block("stage.empty", undefined, []),
    ]);
    assert.equal(
      text,
      [
        "// header",
        'loki.write "odd \\"label\\"" {',
        "  endpoint {",
        '    url = "http://x:3100/push"',
        "  }",
        "}",
        "",
        "stage.empty {}",
        "",
      ].join("\n"),
    );
  });

  it("rejects names and expressions that would not parse", () => {
    assert.throws(() => renderAlloy([attr("bad-name", 1)]));
    assert.throws(() => renderAlloy([attr("true", 1)]));
    assert.throws(() => renderAlloy([block("loki..write", undefined, [])]));
    assert.throws(() => renderAlloy([block("1loki", undefined, [])]));
    assert.throws(() => expr('"a string"'));
    assert.throws(() => expr("a + b"));
  });
});

describe("Alloy pipeline on a web host", () => {
  const ctx = context();
  const host = webHost(ctx);
  const model = alloyPipeline(ctx, host);

  it("produces config.alloy (root:alloy 0640) and the package's environment file", () => {
    const files = renderAlloyFiles(ctx, host);
    assert.deepEqual(
      files.map((f) => [f.path, f.owner, f.group, f.mode]),
      [
        [ALLOY_CONFIG_PATH, "root", "alloy", 0o640],
        [ALLOY_DEFAULTS_PATH, "root", "root", 0o644],
      ],
    );
    assert.equal(files[0].content, renderAlloy(model));
  });

  it("listens on 0.0.0.0 at the topology's Alloy port, so Prometheus can scrape it", () => {
    const defaults = renderAlloyFiles(ctx, host)[1].content;
    const vars = Object.fromEntries(
      defaults
        .split("\n")
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => {
          const m = /^([A-Z_]+)=(.*)$/.exec(l);
          assert.ok(m, l);
          return [m[1], m[2].replace(/^"(.*)"$/, "$1")];
        }),
    );
    assert.equal(vars.CONFIG_FILE, ALLOY_CONFIG_PATH);
    const args = vars.CUSTOM_ARGS.split(" ");
    assert.ok(args.includes(`--server.http.listen-addr=0.0.0.0:${SERVICES.alloy.port}`));
    assert.ok(args.includes("--server.http.listen-addr=0.0.0.0:12345"));
    assert.ok(args.includes("--disable-reporting"));
  });

  it("tails the app's log files into the logfmt pipeline", () => {
    const match = component(model, "local.file_match", "titan");
    assert.deepEqual(value(match, "path_targets"), [{ __path__: "/var/log/titan/*.log" }]);
    const source = component(model, "loki.source.file", "titan");
    assert.deepEqual(refs(value(source, "targets")), ["local.file_match.titan.targets"]);
    assert.deepEqual(refs(value(source, "forward_to")), ["loki.process.titan.receiver"]);
  });

  it("promotes only level to a label; request_id, duration and path stay in the line", () => {
    const process = component(model, "loki.process", "titan");
    const stages = process.body.filter((s): s is AlloyBlock => s.kind === "block").map((b) => b.name);
    assert.deepEqual(stages, ["stage.logfmt", "stage.timestamp", "stage.labels", "stage.match", "stage.static_labels"]);
    assert.deepEqual(value(child(process, "stage.labels"), "values"), { level: "" });
    const promoted = [
      ...Object.keys(value(child(process, "stage.labels"), "values") as object),
      ...Object.keys(value(child(process, "stage.static_labels"), "values") as object),
    ];
    for (const field of ["request_id", "duration", "path", "msg", "ts"]) {
      assert.ok(!promoted.includes(field), `${field} must not be a label`);
    }
    assert.deepEqual(value(child(process, "stage.timestamp"), "source"), "ts");
  });

  it("labels every stream with job, host (the Name tag), role and environment", () => {
    const labels = hostLabels(ctx, host);
    assert.deepEqual(labels, { host: "titan-observability-dev-web-1", role: "web", environment: "dev" });
    const titan = value(child(component(model, "loki.process", "titan"), "stage.static_labels"), "values");
    assert.deepEqual(titan, { job: "titan", ...labels });
    const journal = value(child(component(model, "loki.process", "journal"), "stage.static_labels"), "values");
    assert.deepEqual(journal, { job: "systemd-journal", ...labels });
    const staging = context({ environment: "staging", webCount: "3" });
    assert.deepEqual(hostLabels(staging, webHost(staging, 3)), {
      host: "titan-observability-dev-web-3",
      role: "web",
      environment: "staging",
    });
  });

  it("reads the journal with a bounded max_age and a unit label from the systemd unit", () => {
    const journal = component(model, "loki.source.journal", "system");
    assert.match(value(journal, "max_age") as string, /^\d+h$/);
    assert.deepEqual(refs(value(journal, "relabel_rules")), ["loki.relabel.journal.rules"]);
    assert.deepEqual(refs(value(journal, "forward_to")), ["loki.process.journal.receiver"]);
    const rule = child(component(model, "loki.relabel", "journal"), "rule");
    assert.deepEqual(value(rule, "source_labels"), ["__journal__systemd_unit"]);
    assert.equal(value(rule, "target_label"), "unit");
  });

  it("pushes to the loki host's private IP on port 3100 with retries and backoff", () => {
    const endpoint = child(component(model, "loki.write", "loki"), "endpoint");
    const url = `http://${addressOf(ctx.plan, "loki")}:3100/loki/api/v1/push`;
    assert.equal(value(endpoint, "url"), url);
    assert.equal(url, "http://10.42.0.11:3100/loki/api/v1/push");
    assert.equal(lokiPushUrl(context({ vpcCidr: "172.20.0.0/20" })), "http://172.20.0.11:3100/loki/api/v1/push");
    assert.equal(typeof value(endpoint, "max_backoff_retries"), "number");
    assert.match(value(endpoint, "min_backoff_period") as string, /^\d+(ms|s)$/);
    assert.match(value(endpoint, "max_backoff_period") as string, /^\d+(s|m)$/);
  });

  it("wires every reference to a component that exists, and every process ends in loki.write", () => {
    const defined = new Set(
      blocks(model)
        .filter((b) => b.label !== undefined)
        .map((b) => `${b.name}.${b.label}`),
    );
    const all = blocks(model).flatMap((b) =>
      b.body.flatMap((s) => (s.kind === "attribute" ? collectRefs(s.value) : [])),
    );
    assert.ok(all.length >= 6);
    for (const ref of all) {
      const target = ref.replace(/\.(receiver|targets|rules)$/, "");
      assert.ok(defined.has(target), `${ref} names no component`);
    }
    for (const label of ["titan", "journal"]) {
      assert.deepEqual(refs(value(component(model, "loki.process", label), "forward_to")), [
        "loki.write.loki.receiver",
      ]);
    }
  });

  it("sets exactly the label contract, no more", () => {
    assert.deepEqual([...LOKI_LABELS], ["job", "host", "role", "environment", "filename", "level", "unit"]);
    const union = new Set<string>([...TITAN_STREAM_LABELS, ...JOURNAL_STREAM_LABELS]);
    assert.deepEqual([...union].sort(), [...LOKI_LABELS].sort());
    const set = new Set<string>(["filename", "unit"]);
    for (const b of blocks(model)) {
      if (b.name === "stage.labels" || b.name === "stage.static_labels") {
        for (const k of Object.keys(value(b, "values") as object)) set.add(k);
      }
    }
    assert.deepEqual([...set].sort(), [...LOKI_LABELS].sort());
    assert.ok(!set.has("request_id") && !set.has("duration"));
  });

  it("renders only for web hosts", () => {
    const loki = ctx.plan.hosts.find((h) => h.role === "loki");
    assert.ok(loki);
    assert.throws(() => renderAlloyFiles(ctx, loki), /web hosts only/);
  });
});

describe("Titan log rules", () => {
  const labels = { host: "titan-observability-dev-web-1", role: "web", environment: "dev" };

  it("parse the app's logfmt lines and give them the contract's labels", () => {
    const line =
      'ts=2026-09-01T12:00:00.123Z level=warning msg="slow \\"db\\"" request_id=4f2a duration=0.731 path=/api/items\n';
    assert.deepEqual(parseLogfmt(line), {
      ts: "2026-09-01T12:00:00.123Z",
      level: "warning",
      msg: 'slow "db"',
      request_id: "4f2a",
      duration: "0.731",
      path: "/api/items",
    });
    assert.deepEqual(titanLabels(line, "/var/log/titan/app.log", labels), {
      job: "titan",
      ...labels,
      filename: "/var/log/titan/app.log",
      level: "warning",
    });
    assert.ok(TITAN_LOG_RULES.levels.includes("warning"));
  });

  it("reject malformed lines", () => {
    for (const bad of ["", "level", "level=", 'msg="open', "a=1  b=2", "a=1 a=2", "=x"]) {
      assert.throws(() => parseLogfmt(bad), `accepted ${JSON.stringify(bad)}`);
    }
  });
});

function collectRefs(v: AlloyValue): string[] {
  if (Array.isArray(v)) return (v as AlloyValue[]).flatMap(collectRefs);
  if (v instanceof AlloyExpr) return [v.text];
  if (typeof v === "object" && v !== null) return Object.values(v).flatMap(collectRefs);
  return [];
}
