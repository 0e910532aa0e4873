/**
 * The documentation's structure: a short README (what it is, cost and time, the quick start,
 * the Slack webhook, the configuration reference, troubleshooting, links) and pages under
 * docs/, each carrying its generated block where the README test finds it, every relative link
 * resolving, and no reference to anything outside the repository.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { configTable } from "../templates/configDocs";
import { alertDefinitions } from "../templates/alerts";
import { runbookMarkdown } from "../templates/docs";
import { costEstimate } from "../templates/costDocs";
import {
  AMP_SAMPLE_RATE_COMMAND,
  AMP_SAMPLE_RATE_FILE,
  ampCostSection,
  ampCostSummary,
  parseAmpSampleRate,
} from "../templates/ampCostDocs";
import { testConfig } from "./support/render";
import { FLOWS, ROLES, SERVICES, isOperator, portsOf } from "../facts/topology";
import { ROOT } from "./support/files";
import { TITAN_APP_DIR } from "../templates/host/units";
import { TIMINGS_DOC, TIMINGS_MARKERS, readTimings, RECORDED_TIMINGS, timingsSection } from "./fleet/timings";
import { TRANSITIONS } from "./fleet/matrix";
import { tableCells } from "./support/markdown";
import { snapshot } from "./support/snapshots";
import { BENCH_COUNTS, BENCH_DOC, BENCH_FILE, BENCH_MARKERS, benchSection, readBench } from "../bench/program";
import { MAX_WEB_HOSTS } from "../facts/addressing";
import { METRICS_STORES } from "../facts/metricsStore";

const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const readme = read("README.md");
const DOCS = fs
  .readdirSync(path.join(ROOT, "docs"))
  .filter((f) => f.endsWith(".md"))
  .map((f) => `docs/${f}`);

function between(file: string, start: string, end: string): string {
  const text = read(file);
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  assert.ok(from >= 0 && to > from, `${file} lacks ${start} … ${end}`);
  return text.slice(from + start.length, to).trim();
}

/** The text of a `## heading` section, up to the next heading of that level or higher. */
function section(text: string, heading: string): string {
  const start = text.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `no section "## ${heading}"`);
  const next = text.slice(start + 1).search(/\n#{1,2} /);
  return next < 0 ? text.slice(start) : text.slice(start, start + 1 + next);
}

/** A section's words on one line, so a phrase wrapped across lines still matches. */
const flat = (text: string) => text.replace(/\s*\n>?\s*/g, " ");

const cells = tableCells;

/** Markdown outside fenced code blocks: a `#` line there is a shell comment, not a heading. */
const withoutFences = (text: string) => text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");

/** Markdown outside code blocks and code spans: links there are examples, not links. */
const prose = (text: string) => withoutFences(text).replace(/`[^`\n]*`/g, "");

/** GitHub's heading anchor: lower case, punctuation but '-' and '_' dropped, spaces to '-'. */
const anchorOf = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{Nd}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");

/** Every anchor a Markdown file offers, with GitHub's -1, -2 suffixes for repeated headings. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of withoutFences(text).matchAll(/^#{1,6} (.+)$/gm)) {
    const base = anchorOf(m[1].replace(/`/g, ""));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

describe("README", () => {
  it("is short: at most 175 lines", () => {
    const lines = readme.trimEnd().split("\n").length;
    assert.ok(lines <= 175, `README.md has ${lines} lines; move detail to docs/`);
  });

  it("says what it is with the diagram, then cost and time, then the sections a newcomer needs, in order", () => {
    const order = [
      "```mermaid",
      "**Cost and time.**",
      "\n## Quick start\n",
      "\n## Slack incoming webhook\n",
      "\n## Configuration reference\n",
      "\n## Troubleshooting\n",
      "\n## Documentation\n",
    ];
    const at = order.map((s) => readme.indexOf(s));
    at.forEach((i, k) => assert.ok(i >= 0, `README lacks ${order[k]}`));
    assert.deepEqual(
      [...at].sort((a, b) => a - b),
      at,
      `README's sections are out of order: ${order.join(", ")}`,
    );
  });

  it("gives the default stack's cost an hour, a day and a month as the cost table computes it", () => {
    const estimate = costEstimate(testConfig());
    const box = readme.slice(readme.indexOf("**Cost and time.**"), readme.indexOf("\n## Quick start"));
    for (const figure of [
      `$${estimate.hourly.toFixed(3)} an hour`,
      `$${(estimate.hourly * 24).toFixed(2)} a day`,
      `$${estimate.monthly.toFixed(0)} a`,
    ]) {
      assert.ok(box.replace(/\n> /g, " ").includes(figure), `the cost box lacks ${figure}`);
    }
    const gib = estimate.volumesGib.reduce((sum, v) => sum + v.gib, 0);
    assert.ok(box.includes(`${gib} GiB of gp3`), `the cost box names ${gib} GiB of gp3`);
    assert.match(box, /minutes/, "the cost box says how long a deploy takes");
  });

  it("has the quick start's steps in order, from prerequisites to what is left locally", () => {
    const quick = section(readme, "Quick start");
    const steps: [string, RegExp][] = [
      [
        "prerequisites, with the deploying identity's IAM permissions",
        /Prerequisites[\s\S]*deploying identity[\s\S]*GetConsoleOutput[\s\S]*iam:PassRole/,
      ],
      ["the deploy", /npm run deploy/],
      ["the Grafana password", /stack output --show-secrets grafanaAdminPassword/],
      ["the SSH key", /stack output --show-secrets sshPrivateKey/],
      ["opening Grafana", /Open Grafana/],
      [
        "the dashboards by name",
        /Titan \/ System[\s\S]*Titan \/ Application[\s\S]*Titan \/ Logs[\s\S]*Titan \/ Pipeline/,
      ],
      // The path the app is installed at (the fleet runs this very command on the web host).
      ["the disk-fill demo", new RegExp(`sudo ${TITAN_APP_DIR.replace(/\//g, "\\/")}\\/demo\\/disk-fill\\.sh`)],
      ["the alert in Slack, with how long it takes", /alert in Slack[\s\S]*?\d+ to \d+ minutes/],
      ["the teardown", /npm run destroy/],
      ["what is left locally", /What is left locally[\s\S]*\.pulumi-state/],
      ["the warning about deleting the checkout", /Warning[\s\S]*checkout[\s\S]*billing/],
    ];
    let from = 0;
    for (const [what, pattern] of steps) {
      const m = pattern.exec(quick.slice(from));
      assert.ok(m, `the quick start lacks ${what} after what comes before it`);
      from += m.index;
    }
    for (let n = 1; n <= 8; n++) assert.match(quick, new RegExp(`^${n}\\. \\*\\*`, "m"), `step ${n}`);
  });

  it("says how to create a Slack webhook and that setting it takes a second deploy", () => {
    const slack = flat(section(readme, "Slack incoming webhook"));
    assert.match(slack, /api\.slack\.com\/apps/);
    assert.match(slack, /second deploy/);
    assert.match(slack, /npm run pulumi -- config set --secret slackWebhookUrl/);
  });

  it("troubleshoots a changed IP, an SSH timeout, a lost passphrase, a failed verification, a policy violation and a stopped host", () => {
    const trouble = flat(section(readme, "Troubleshooting"));
    for (const topic of [
      /IP changed/,
      /SSH times out/,
      /Lost passphrase/,
      /Verification failed/,
      /Policy violation/,
      /stopped host/,
    ]) {
      assert.match(trouble, topic);
    }
  });

  it("carries the configuration reference rendered from facts/config.ts", () => {
    assert.deepEqual(
      cells(between("README.md", "<!-- config-table:start -->", "<!-- config-table:end -->")),
      cells(configTable()),
    );
  });

  it("gives metricsStore=amp's cost from the sample rate the fleet recorded, in its summary and in docs/metrics-store.md", () => {
    const update = `UPDATE_AMP_COST=1 node --test build/tests/readme.test.js`;
    const file = path.join(ROOT, AMP_SAMPLE_RATE_FILE);
    assert.ok(
      fs.existsSync(file),
      `${AMP_SAMPLE_RATE_FILE} is missing: record the stack's sample rate on the fleet with \`${AMP_SAMPLE_RATE_COMMAND}\`, then write the cost sections from it with \`${update}\``,
    );
    const rate = parseAmpSampleRate(JSON.parse(fs.readFileSync(file, "utf8")), AMP_SAMPLE_RATE_FILE);
    const sections = [
      { doc: "README.md", marker: "amp-cost-summary", text: ampCostSummary(rate, testConfig()), inline: true },
      {
        doc: "docs/metrics-store.md",
        marker: "amp-cost-table",
        text: ampCostSection(rate, testConfig()),
        inline: false,
      },
    ];
    for (const { doc, marker, text, inline } of sections) {
      const [start, end] = [`<!-- ${marker}:start -->`, `<!-- ${marker}:end -->`];
      if (process.env.UPDATE_AMP_COST === "1") {
        const current = read(doc);
        const from = current.indexOf(start) + start.length;
        const to = current.indexOf(end);
        assert.ok(from >= start.length && to >= from, `${doc} lacks ${start} … ${end}`);
        const body = inline ? text : `\n${text}\n`;
        fs.writeFileSync(path.join(ROOT, doc), `${current.slice(0, from)}${body}${current.slice(to)}`);
        continue;
      }
      const shown = between(doc, start, end);
      // The generator lays the table out as prettier does (templates/markdownTable.ts): byte for byte.
      assert.equal(shown, text.trim(), `${doc} is not what ${AMP_SAMPLE_RATE_FILE} gives: \`${update}\``);
    }
  });
});

describe("docs/", () => {
  it("docs/runbooks.md carries a runbook section for every alert, rendered from the alert table", () => {
    assert.equal(
      between("docs/runbooks.md", "<!-- runbooks:start -->", "<!-- runbooks:end -->"),
      runbookMarkdown(testConfig()),
    );
    const offered = anchors(read("docs/runbooks.md"));
    for (const def of alertDefinitions(testConfig())) assert.ok(offered.has(def.runbook), def.runbook);
    assert.match(read("docs/runbooks.md"), /runbookBaseUrl/, "the page says how alerts link to it");
  });

  it("docs/testing.md names the test command that .ci/run and package.json run, and how to run one file", () => {
    const testing = read("docs/testing.md");
    assert.match(testing, /## The test command\n\n```sh\nnpm test\n```/);
    assert.match(testing, /npx tsc -p \. && node --test build\/tests\/\S+\.test\.js/);
    assert.match(testing, /Node\.js 20/);
    assert.match(testing, /TITAN_SKIP_FLEET=1/);
    assert.match(read(".ci/run"), /^npm test$/m);
    const pkg = JSON.parse(read("package.json")) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts.test, "scripts/test.sh");
    assert.equal(pkg.scripts.deploy, "scripts/deploy.sh");
  });

  it("docs/fleet.md shows the fleet's timings as the recorded run wrote them (bench/fleet-timings.json)", () => {
    assert.equal(TIMINGS_DOC(ROOT), path.join(ROOT, "docs", "fleet.md"), "npm run fleet:record writes docs/fleet.md");
    const recorded = readTimings(RECORDED_TIMINGS(ROOT));
    assert.equal(
      between("docs/fleet.md", ...TIMINGS_MARKERS),
      timingsSection(recorded).trim(),
      "run `npm run fleet:record`",
    );
    // The recorded run went through every configuration transition of the table.
    for (const t of TRANSITIONS) {
      assert.ok(
        recorded.transitions.some((r) => r.id === t.id),
        `transition ${t.id} is not in the recorded run: record again`,
      );
    }
  });

  it("docs/testing.md shows the program benchmark as the recorded run wrote it (bench/program.json)", () => {
    assert.equal(BENCH_DOC(ROOT), path.join(ROOT, "docs", "testing.md"), "npm run bench writes docs/testing.md");
    const recorded = readBench(BENCH_FILE(ROOT));
    const again = "run `npm run bench`: it writes bench/program.json and this section from the same run";
    const shown = between("docs/testing.md", ...BENCH_MARKERS);
    assert.equal(shown, benchSection(recorded).trim(), again);
    // The run's structure: every webCount of the scaling table and both stores at the largest.
    assert.deepEqual(
      recorded.scaling.map((r) => [r.webCount, r.hosts, r.metricsStore]),
      BENCH_COUNTS.map((n) => [n, n + 3, "local"]),
      again,
    );
    assert.deepEqual(
      recorded.stores.map((r) => [r.metricsStore, r.webCount]),
      METRICS_STORES.map((store) => [store, MAX_WEB_HOSTS]),
      again,
    );
    assert.deepEqual(
      recorded.stores[0],
      recorded.scaling[recorded.scaling.length - 1],
      "local's store row is the last",
    );
    assert.match(recorded.measured, /^\d{4}-\d{2}-\d{2}$/);
    for (const r of [...recorded.scaling, ...recorded.stores]) {
      assert.ok(Number.isInteger(r.resources) && r.resources > 0, `resources ${r.resources}`);
      for (const f of [r.wallMs, r.programMs, r.peakRssMb]) assert.ok(Number.isFinite(f) && f > 0, `${f}`);
    }
  });

  it("bench/program.json's resource counts are what the program declares today", async () => {
    const recorded = readBench(BENCH_FILE(ROOT));
    for (const r of [recorded.scaling[0], ...recorded.stores]) {
      const snap = await snapshot({ webCount: String(r.webCount), metricsStore: r.metricsStore });
      assert.equal(
        snap.resources.length,
        r.resources,
        `webCount ${r.webCount}, ${r.metricsStore}: the program declares ${snap.resources.length} resources, the recorded benchmark ${r.resources}: run \`npm run bench\``,
      );
    }
  });

  it("docs/architecture.md lists each role's ports as topology.ts has them", () => {
    const hosts = section(read("docs/architecture.md"), "Hosts");
    for (const role of ROLES) {
      const ports = portsOf(role).filter((p) => p !== 22);
      const row = cells(hosts).find((c) => c[0] === `\`${role}\``);
      assert.ok(row, `no host row for ${role}`);
      assert.equal(row[2], ports.join(", "), role);
    }
  });

  it("docs/architecture.md's security-group matrix is the one topology.ts opens", () => {
    const table = cells(section(read("docs/architecture.md"), "Security groups"));
    const [header, ...rows] = table;
    const sources = header.slice(1).map((h) => h.replace(/^from /, ""));
    const documented = new Set<string>();
    for (const row of rows) {
      const m = /^(\d+) \([^)]+\), (\w+)$/.exec(row[0]);
      assert.ok(m, `row ${row[0]}: expected "<port> (<service>), <role or all>"`);
      row.slice(1).forEach((cell, i) => {
        if (cell === "yes") documented.add(`${m[1]} on ${m[2]} from ${sources[i]}`);
        else assert.equal(cell, "", `row ${row[0]}: ${cell}`);
      });
    }
    const declared = new Set<string>();
    for (const flow of FLOWS) {
      const service = SERVICES[flow.service];
      const on = service.runsOn.length === ROLES.length ? "all" : service.runsOn.join("+");
      for (const from of flow.from) {
        declared.add(`${service.port} on ${on} from ${isOperator(from) ? "operators" : from.role}`);
      }
    }
    assert.deepEqual([...documented].sort(), [...declared].sort());
  });
});

describe("links and references", () => {
  const files = ["README.md", ...DOCS];

  it("every relative link in README.md and docs/*.md reaches an existing file, and its anchor a heading there", () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of files) {
      for (const m of prose(read(file)).matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
        const [rel, anchor] = target.split("#");
        const resolved = rel === "" ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), rel));
        checked++;
        if (resolved.startsWith("..") || !fs.existsSync(path.join(ROOT, resolved))) {
          broken.push(`${file}: ${target} (no file ${resolved})`);
        } else if (anchor !== undefined && !anchors(read(resolved)).has(anchor)) {
          broken.push(`${file}: ${target} (no heading #${anchor} in ${resolved})`);
        }
      }
    }
    assert.deepEqual(broken, []);
    assert.ok(checked > 20, `only ${checked} links checked`);
  });

  it("the anchor rule is GitHub's: a section with backticks, punctuation and a repeated title", () => {
    const offered = anchors(
      "## What `pulumi up` does\n\n### App high latency (p95)\n\n## Cost\n\n## Cost\n\n```sh\n# not a heading\n```\n",
    );
    assert.deepEqual([...offered], ["what-pulumi-up-does", "app-high-latency-p95", "cost", "cost-1"]);
  });

  it("nothing in the repository refers to a design document outside it", () => {
    const outside = ["..", "shared"].join("/");
    const oldName = ["DESIGN", "md"].join(".");
    const listed = spawnSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(listed.status, 0, listed.stderr);
    const found: string[] = [];
    for (const file of listed.stdout.split("\0").filter((f) => f !== "" && !f.startsWith("build"))) {
      const full = path.join(ROOT, file);
      if (!fs.existsSync(full) || fs.statSync(full).size > 2_000_000) continue;
      const text = fs.readFileSync(full, "utf8");
      if (text.includes(outside) || text.includes(oldName)) found.push(file);
    }
    assert.deepEqual(found, [], `point these at docs/architecture.md`);
  });

  it("LICENSE is the license package.json names", () => {
    const pkg = JSON.parse(read("package.json")) as { license: string };
    assert.equal(pkg.license, "MIT");
    const license = read("LICENSE");
    assert.match(license, /^MIT License\n\nCopyright \(c\) 2026 The Titan observability authors\n/);
    assert.match(license, /THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND/);
  });
});
