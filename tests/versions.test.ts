import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { aptSandbox } from "./support/aptSandbox";
import YAML from "yaml";
import { acceptedPins, GRAFANA_APT, IMAGES, VERSIONS, type PinnedPackage } from "../facts/versions";
import { grafanaSourcesLine, renderAptPreferences } from "../templates/host/aptPins";
import { ROOT } from "./support/files";

const WORKFLOW = path.join(ROOT, ".github/workflows/validate-configs.yml");

/** apt_preferences(5) stanzas as field maps. */
function parseStanzas(text: string): Record<string, string>[] {
  return text
    .trim()
    .split(/\n\n/)
    .map((stanza) =>
      Object.fromEntries(
        stanza.split("\n").map((line) => {
          const m = /^([A-Za-z-]+): (.+)$/.exec(line);
          assert.ok(m, `not a "Field: value" line: ${JSON.stringify(line)}`);
          return [m[1], m[2]];
        }),
      ),
    );
}

describe("versions table", () => {
  const packages: PinnedPackage[] = Object.values(VERSIONS);

  it("has semver-like upstream versions and pins that match them", () => {
    for (const p of packages) {
      assert.match(p.version, /^\d+\.\d+\.\d+(\+[a-z0-9.]+)?$/, p.package);
      assert.ok(p.aptPin.startsWith(p.version), `${p.package}: pin ${p.aptPin} is not version ${p.version}`);
      if (p.origin === "debian") assert.match(p.aptPin, /-\*$/, `${p.package}: Debian revisions change, pin a glob`);
      else assert.doesNotMatch(p.aptPin, /\*/, `${p.package}: Grafana's repository versions are exact`);
    }
  });

  it("pins the decided major lines and the Debian 12 packages the tests run against", () => {
    assert.match(VERSIONS.grafana.version, /^12\./);
    assert.match(VERSIONS.loki.version, /^3\./);
    assert.match(VERSIONS.alloy.version, /^1\./);
    assert.equal(VERSIONS.prometheus.aptPin, "2.42.0+ds-*");
    assert.equal(VERSIONS.nodeExporter.package, "prometheus-node-exporter");
    assert.equal(VERSIONS.nodeExporter.aptPin, "1.5.0-*");
    assert.equal(
      VERSIONS.loki.package,
      "loki",
      "Grafana's loki, not Debian's genetics tool: pinned to apt.grafana.com",
    );
    assert.equal(VERSIONS.loki.origin, "grafana");
  });

  it("records Grafana's repository with a full 40-hex-digit key fingerprint", () => {
    assert.match(GRAFANA_APT.keyFingerprint, /^[0-9A-F]{40}$/);
    assert.equal(GRAFANA_APT.keyFingerprint, "B53AE77BADB630A683046005963FA27710458545");
    assert.equal(GRAFANA_APT.keyUrl, "https://apt.grafana.com/gpg.key");
    assert.equal(GRAFANA_APT.suite, "stable");
    assert.deepEqual(GRAFANA_APT.components, ["main"]);
    assert.equal(
      grafanaSourcesLine(),
      "deb [signed-by=/etc/apt/keyrings/grafana.gpg] https://apt.grafana.com stable main\n",
    );
  });

  it("derives the container tags from the table", () => {
    assert.equal(IMAGES.loki, `grafana/loki:${VERSIONS.loki.version}`);
    assert.equal(IMAGES.alloy, `grafana/alloy:v${VERSIONS.alloy.version}`);
  });
});

describe("apt preferences", () => {
  it("renders one priority-1001 stanza per accepted version of each package, the table's first", () => {
    const stanzas = parseStanzas(renderAptPreferences());
    const all = Object.values(VERSIONS) as PinnedPackage[];
    assert.equal(
      stanzas.length,
      all.map((p) => acceptedPins(p).length).reduce((a, b) => a + b),
    );
    for (const p of all) {
      const own = stanzas.filter((s) => s.Package === p.package);
      assert.deepEqual(
        own.map((s) => s["Pin"]),
        acceptedPins(p).map((pin) => `version ${pin}`),
      );
      assert.equal(own[0]["Pin"], `version ${p.aptPin}`);
      for (const stanza of own) {
        assert.equal(stanza["Pin-Priority"], "1001");
        assert.match(stanza["Explanation"], new RegExp(p.origin === "grafana" ? "apt\\.grafana\\.com" : "Debian 12"));
      }
    }
    assert.ok(renderAptPreferences().endsWith("\n") && !renderAptPreferences().endsWith("\n\n"));
  });

  it("accepts Grafana's security re-issues of the pinned patch, and only Grafana's", () => {
    const v = VERSIONS.grafana.aptPin;
    assert.deepEqual(acceptedPins(VERSIONS.grafana), [v, `${v}-[0-9][0-9]`, `${v}+security-[0-9][0-9]`]);
    for (const p of [VERSIONS.loki, VERSIONS.alloy, VERSIONS.prometheus, VERSIONS.nodeExporter])
      assert.deepEqual(acceptedPins(p), [p.aptPin]);
    assert.throws(
      () =>
        acceptedPins({
          package: "grafana",
          version: "12.4.15",
          aptPin: "12.4.*",
          origin: "grafana",
          securityReissues: true,
        }),
      /grafana: securityReissues needs an exact X\.Y\.Z aptPin, got "12\.4\.\*"/,
    );
  });

  it("follows the table when it changes", () => {
    const text = renderAptPreferences([{ package: "loki", version: "3.9.0", aptPin: "3.9.0", origin: "grafana" }]);
    assert.deepEqual(parseStanzas(text), [
      {
        Explanation: "loki 3.9.0 from https://apt.grafana.com (stable)",
        Package: "loki",
        Pin: "version 3.9.0",
        "Pin-Priority": "1001",
      },
    ]);
  });

  it("refuses what would corrupt the file", () => {
    assert.throws(() =>
      renderAptPreferences([{ package: "loki\nPin: version *", version: "1.0.0", aptPin: "1.0.0", origin: "grafana" }]),
    );
    assert.throws(() =>
      renderAptPreferences([
        { package: "loki", version: "1.0.0", aptPin: "1.0.0\nPin-Priority: -1", origin: "grafana" },
      ]),
    );
  });
});

describe("validate-configs workflow", () => {
  const text = fs.readFileSync(WORKFLOW, "utf8");

  it("runs on pull requests and pushes to main", () => {
    const wf = YAML.parse(text) as { on: { pull_request?: unknown; push?: { branches?: string[] } } };
    assert.ok("pull_request" in wf.on);
    assert.deepEqual(wf.on.push?.branches, ["main"]);
  });

  it("uses exactly the image tags of the versions table", () => {
    const used = new Set([...text.matchAll(/grafana\/(?:grafana|loki|alloy):[^\s"']+/g)].map((m) => m[0]));
    const pinned: string[] = Object.values(IMAGES);
    for (const tag of used) assert.ok(pinned.includes(tag), `${tag} is not in IMAGES (${pinned.join(", ")})`);
    assert.ok(used.has(IMAGES.loki) && used.has(IMAGES.alloy), `expected ${IMAGES.loki} and ${IMAGES.alloy}`);
  });

  it("writes no Grafana version: the only versions in it are the Loki and Alloy image tags", () => {
    // Grafana's comes from the table through tools/validate/grafanaApt.ts, never a literal.
    const allowed = Object.values(IMAGES).join(" ");
    const versions = [...text.matchAll(/\d+\.\d+\.\d+[^\s"']*/g)].map((m) => m[0]);
    for (const v of versions) assert.ok(allowed.includes(v), `version literal ${v} is not an IMAGES tag (${allowed})`);
    assert.ok(!text.includes(VERSIONS.grafana.version), `the Grafana pin ${VERSIONS.grafana.version} is written in`);
    assert.doesNotMatch(text, /grafana=|grafana\/grafana(-oss|-enterprise)?:/, "no Grafana package or image spec");
  });

  it("renders with the validation CLI, then runs loki -verify-config and alloy validate", () => {
    assert.match(text, /node build\/tools\/validate\/renderForValidation\.js /);
    assert.match(text, /"\$LOKI_IMAGE" -config\.file=\/etc\/loki\/config\.yml -verify-config/);
    assert.match(text, /"\$ALLOY_IMAGE" validate \/etc\/alloy\/config\.alloy/);
  });

  it("passes action-validator", () => {
    const result = spawnSync(path.join(ROOT, "node_modules/.bin/action-validator"), [WORKFLOW], { encoding: "utf8" });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  });
});

/**
 * apt itself, on the rendered preferences: a throwaway repository of empty `grafana` packages at
 * the versions Grafana's repository could hold, read with the build machine's apt-get and
 * apt-cache (as tests/fleet/standins.test.ts reads the stand-ins). Priority 1001 must go to the
 * pinned patch and its re-issues only, and the candidate must be the highest of those.
 */
describe("apt on the rendered preferences", { timeout: 60_000 }, () => {
  const v = VERSIONS.grafana.aptPin;

  function policy(versions: readonly string[]): { candidate: string; priorities: Map<string, number> } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "apt-pins-"));
    try {
      const repo = path.join(dir, "repo");
      fs.mkdirSync(repo);
      for (const version of versions) {
        const tree = path.join(dir, "tree", version, "DEBIAN");
        fs.mkdirSync(tree, { recursive: true });
        fs.writeFileSync(
          path.join(tree, "control"),
          `Package: grafana\nVersion: ${version}\nArchitecture: all\nMaintainer: test <t@localhost>\nDescription: stand-in\n`,
        );
        execFileSync(
          "dpkg-deb",
          ["--build", "-Zgzip", path.dirname(tree), path.join(repo, `grafana_${version}_all.deb`)],
          {
            stdio: "ignore",
          },
        );
      }
      fs.writeFileSync(
        path.join(repo, "Packages"),
        execFileSync("dpkg-scanpackages", ["--multiversion", ".", "/dev/null"], {
          cwd: repo,
          stdio: ["ignore", "pipe", "ignore"],
        }),
      );
      const { root: apt, opts } = aptSandbox(dir);
      fs.writeFileSync(path.join(apt, "etc/sources.list"), `deb [trusted=yes] file://${repo} ./\n`);
      fs.writeFileSync(path.join(apt, "etc/preferences.d/titan-pins"), renderAptPreferences());
      const update = spawnSync("apt-get", [...opts, "update"], { encoding: "utf8" });
      assert.equal(update.status, 0, update.stderr);
      const out = execFileSync("apt-cache", [...opts, "policy", "grafana"], { encoding: "utf8" });
      const candidate = /Candidate: (\S+)/.exec(out)?.[1] ?? "";
      const priorities = new Map(
        [...out.matchAll(/^\s+(?:\*\*\* )?(\S+) (-?\d+)$/gm)].map((m) => [m[1], Number(m[2])] as const),
      );
      assert.equal(priorities.size, versions.length, out);
      return { candidate, priorities };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it("gives 1001 to the patch and its re-issues only, and installs the newest re-issue", () => {
    const accepted = [v, `${v}-01`, `${v}-02`, `${v}+security-01`];
    // Not `${v}-1`, `${v}-001` or `${v}+security-1`: dpkg compares revisions as numbers, so
    // they equal -01 and +security-01 and apt keeps just one of each; the bootstrap's
    // check_version refuses them (tests/templates-host.test.ts).
    const refused = [`${v}-100`, `${v}-03~rc1`, `${v}.1`, "12.4.14", "12.4.16", "13.0.0"];
    const { candidate, priorities } = policy([...accepted, ...refused]);
    for (const version of accepted) assert.equal(priorities.get(version), 1001, version);
    for (const version of refused) assert.equal(priorities.get(version), 500, version);
    assert.equal(candidate, `${v}+security-01`);
    assert.equal(policy([v, `${v}-01`, `${v}-02`, "12.4.16"]).candidate, `${v}-02`, "the latest -NN re-issue");
  });

  it("keeps the pinned patch over newer releases while no re-issue exists", () => {
    assert.equal(policy(["12.4.14", v, "12.4.16", "13.0.0"]).candidate, v);
  });
});
