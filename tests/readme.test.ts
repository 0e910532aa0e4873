import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { configTable } from "../templates/configDocs";
import { alertDefinitions } from "../templates/alerts";
import { runbookMarkdown } from "../templates/docs";
import { testConfig } from "./support/render";
import { ROLES, portsOf } from "../facts/topology";
import { ROOT } from "./support/files";
import { README_MARKERS, readTimings, RECORDED_TIMINGS, timingsSection } from "./fleet/timings";
import { TRANSITIONS } from "./fleet/matrix";

const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");

function between(start: string, end: string): string {
  const from = readme.indexOf(start);
  const to = readme.indexOf(end);
  assert.ok(from >= 0 && to > from, `README lacks ${start} … ${end}`);
  return readme.slice(from + start.length, to).trim();
}

/** Table cells, so the comparison survives prettier's column padding. */
const cells = (table: string) =>
  table
    .split("\n")
    .filter((line) => line.startsWith("|") && !/^\|[-:| ]+\|$/.test(line))
    .map((line) =>
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim()),
    );

describe("README", () => {
  it("carries the configuration reference rendered from facts/config.ts", () => {
    assert.deepEqual(cells(between("<!-- config-table:start -->", "<!-- config-table:end -->")), cells(configTable()));
  });

  it("carries a runbook section for every alert, rendered from the alert table", () => {
    assert.equal(between("<!-- runbooks:start -->", "<!-- runbooks:end -->"), runbookMarkdown(testConfig()));
    // GitHub's heading anchor: lower case, punctuation but '-' dropped, spaces to '-'.
    const anchors = [...readme.matchAll(/^### (.+)$/gm)].map((m) =>
      m[1]
        .toLowerCase()
        .replace(/[^\p{L}\p{M}\p{Nd}\p{Pc} -]/gu, "")
        .replace(/ /g, "-"),
    );
    for (const def of alertDefinitions(testConfig())) assert.ok(anchors.includes(def.runbook), def.runbook);
  });

  it("names the test command that .ci/run and package.json run", () => {
    assert.match(readme, /## Test\n\n```sh\nnpm test\n```/);
    const ci = fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8");
    assert.match(ci, /^npm test$/m);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts.test, "scripts/test.sh");
    assert.equal(pkg.scripts.deploy, "scripts/deploy.sh");
  });

  it("lists each role's ports as topology.ts has them", () => {
    for (const role of ROLES) {
      const ports = portsOf(role).filter((p) => p !== 22);
      const row = cells(readme).find((c) => c[0].startsWith(`\`${role}\``));
      assert.ok(row, `no host row for ${role}`);
      assert.equal(row[2], ports.join(", "), role);
    }
  });

  it("shows the fleet's timings as the recorded run wrote them (bench/fleet-timings.json)", () => {
    const recorded = readTimings(RECORDED_TIMINGS(ROOT));
    assert.equal(between(...README_MARKERS), timingsSection(recorded).trim(), "run `npm run fleet:record`");
    // The recorded run went through every configuration transition of the table.
    for (const t of TRANSITIONS) {
      assert.ok(
        recorded.transitions.some((r) => r.id === t.id),
        `transition ${t.id} is not in the recorded run: record again`,
      );
    }
  });

  it("shows the benchmark's measured table", () => {
    assert.match(between("<!-- bench-program:start -->", "<!-- bench-program:end -->"), /\| webCount \| hosts \|/);
  });
});
