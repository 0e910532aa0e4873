import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { costEstimate, costTable } from "../templates/costDocs";
import { ROOT } from "./support/files";
import { testConfig } from "./support/render";
import { snapshot, type TimedSnapshot } from "./support/snapshots";
import { tableCells } from "./support/markdown";

const START = "<!-- cost-table:start -->";
const END = "<!-- cost-table:end -->";

/** The cost block wherever the documentation keeps it (README.md or a page under docs/). */
function documentedCostTable(): { file: string; table: string } {
  const docs = path.join(ROOT, "docs");
  const files = [
    path.join(ROOT, "README.md"),
    ...(fs.existsSync(docs) ? fs.readdirSync(docs).map((f) => path.join(docs, f)) : []),
  ].filter((f) => f.endsWith(".md"));
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    const from = text.indexOf(START);
    if (from < 0) continue;
    const to = text.indexOf(END, from);
    assert.ok(to > from, `${file}: ${START} without ${END}`);
    return { file, table: text.slice(from + START.length, to).trim() };
  }
  assert.fail(`no ${START} … ${END} block in README.md or docs/*.md`);
}

const cells = tableCells;

describe("cost estimate", () => {
  let snap: TimedSnapshot;
  before(async () => {
    snap = await snapshot();
  });

  it("prices every volume the program creates, Loki's data volume included", () => {
    const config = testConfig();
    const priced = costEstimate(config).volumesGib;
    const declared = [
      ...snap.resources
        .filter((r) => r.type === "aws:ec2/instance:Instance")
        .map((r) => (r.inputs.rootBlockDevice as { volumeSize: number }).volumeSize),
      ...snap.resources.filter((r) => r.type === "aws:ebs/volume:Volume").map((r) => r.inputs.size as number),
    ];
    assert.deepEqual(
      priced.map((v) => v.gib).sort((a, b) => a - b),
      declared.sort((a, b) => a - b),
    );
    assert.ok(priced.some((v) => v.host === "loki" && v.kind === "data" && v.gib === config.dataVolumeSizeGb.loki));
    const hosts = snap.resources.filter((r) => r.type === "aws:ec2/instance:Instance").length;
    assert.equal(snap.resources.filter((r) => r.type === "aws:ec2/eip:Eip").length, hosts);
  });

  it("is what the documentation shows, for the default configuration", () => {
    const { file, table } = documentedCostTable();
    const expected = costTable(testConfig());
    assert.deepEqual(cells(table), cells(expected), `${file}: regenerate the cost table`);
    const prose = (text: string) => text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("|"));
    assert.deepEqual(prose(table), prose(expected), `${file}: regenerate the cost table`);
  });

  it("refuses an instance type it has no price for, naming the key", () => {
    assert.throws(
      () => costEstimate(testConfig({ webInstanceType: "m6i.large" })),
      /webInstanceType = "m6i\.large": no list price/,
    );
  });
});
