/**
 * A local APT repository of the stand-in packages, signed with a throwaway OpenPGP key made
 * for this run in a temporary GNUPGHOME. Like Grafana's repository, which keeps every release,
 * it holds each package at its pin AND at the next patch release (packages.ts
 * buildNewerPackages), so a host stays at its pin only because of the apt preferences the
 * program writes (templates/host/aptPins.ts), not because nothing newer exists. The index is
 * made with dpkg-scanpackages --multiversion (reprepro 5.3, Debian 12's, keeps one version of
 * a package per suite) and a Release file written here, signed inline (InRelease) and detached. It has the shape of Grafana's (facts/versions.ts
 * AptRepository: URI, suite `stable`, component `main`, key URL, 40-hex fingerprint), so the
 * renderer can take it in Grafana's place. The caller serves `dir` at `uri` (file:// by default).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import type { AptRepository } from "../../../facts/versions";
import { GRAFANA_APT } from "../../../facts/versions";
import { buildAllPackages, buildNewerPackages, hostArchitecture, type BuiltPackage } from "./packages";

/** Where the exported key lands inside the repository, fetched by the bootstrap like Grafana's gpg.key. */
export const KEY_FILE = "gpg.key";

export interface StandinRepository extends AptRepository {
  /** The directory to serve at `uri`. */
  readonly dir: string;
  /** The signing key, ASCII-armored (also at `${dir}/${KEY_FILE}`). */
  readonly armoredKey: string;
  /** Each stand-in at its pin (what the bootstrap must install). */
  readonly packages: readonly BuiltPackage[];
  /** Each stand-in at the next patch release, offered beside it (what the pins must refuse). */
  readonly newer: readonly BuiltPackage[];
}

export interface RepositoryOptions {
  /** Where the repository will be reachable from the hosts; `file://<dir>` when omitted. */
  readonly uri?: string;
  readonly architecture?: string;
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, input?: string, cwd?: string): string {
  try {
    return execFileSync(cmd, args, { env, cwd, encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: string; status?: number };
    throw new Error(`${cmd} ${args.join(" ")} failed (exit ${err.status}): ${err.stderr ?? ""}`);
  }
}

/** The fingerprint as the bootstrap reads it: `gpg --show-keys --with-colons`, first `fpr` record. */
export function fingerprintOf(armoredKey: string): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "standin-gpg-show-"));
  try {
    const out = run(
      "gpg",
      ["--batch", "--show-keys", "--with-colons"],
      { ...process.env, GNUPGHOME: home },
      armoredKey,
    );
    const fpr = out.split("\n").find((l) => l.startsWith("fpr:"));
    const value = fpr?.split(":")[9] ?? "";
    if (!/^[0-9A-F]{40}$/.test(value)) throw new Error(`no 40-hex fingerprint in the key: ${JSON.stringify(value)}`);
    return value;
  } finally {
    fs.rmSync(home, { recursive: true, force: true });
  }
}

function validateUri(uri: string): string {
  if (!/^(file:\/\/\/|https?:\/\/)[A-Za-z0-9@%+=:,./_-]+$/.test(uri))
    throw new Error(`repository uri ${JSON.stringify(uri)}: expected file:///path or http(s)://host[:port]/path`);
  return uri.replace(/\/+$/, "");
}

/** Builds the three stand-in packages and a signed repository of them in `dir` (made if missing). */
export function buildStandinRepository(dir: string, options: RepositoryOptions = {}): StandinRepository {
  dir = path.resolve(dir);
  const uri = validateUri(options.uri ?? `file://${dir}`);
  const arch = options.architecture ?? hostArchitecture();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "standin-build-"));
  const gnupg = fs.mkdtempSync(path.join(os.tmpdir(), "standin-gnupg-"));
  const env = { ...process.env, GNUPGHOME: gnupg };
  try {
    fs.mkdirSync(dir, { recursive: true });
    const packages = buildAllPackages(path.join(work, "trees"), path.join(work, "debs"), arch);
    const newer = buildNewerPackages(path.join(work, "trees"), path.join(work, "debs"), arch);
    // A throwaway key: no passphrase, lives only as long as this build.
    const uid = `titan-observability local fleet stand-ins ${new Date().toISOString()} <fleet@localhost>`;
    run("gpg", ["--batch", "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "1d"], env);
    const armoredKey = run("gpg", ["--batch", "--armor", "--export", uid], env);
    const keyFingerprint = fingerprintOf(armoredKey);
    fs.writeFileSync(path.join(dir, KEY_FILE), armoredKey);

    const suite = GRAFANA_APT.suite;
    const components = [...GRAFANA_APT.components];
    for (const p of [...packages, ...newer]) {
      const to = path.join(dir, poolPath(p));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.copyFileSync(p.file, to);
    }
    const dists = path.join(dir, "dists", suite);
    const indexDir = `${components[0]}/binary-${arch}`;
    fs.mkdirSync(path.join(dists, indexDir), { recursive: true });
    const index = run("dpkg-scanpackages", ["--multiversion", "pool", "/dev/null"], env, undefined, dir);
    const indexes: Record<string, Buffer> = {
      [`${indexDir}/Packages`]: Buffer.from(index),
      [`${indexDir}/Packages.gz`]: zlib.gzipSync(index),
    };
    for (const [name, bytes] of Object.entries(indexes)) fs.writeFileSync(path.join(dists, name), bytes);
    const release = [
      "Origin: titan-observability-fleet",
      "Label: STAND-IN vendor packages (not Grafana's repository)",
      `Suite: ${suite}`,
      `Codename: ${suite}`,
      `Date: ${new Date().toUTCString().replace(/GMT$/, "UTC")}`,
      `Architectures: ${arch}`,
      `Components: ${components.join(" ")}`,
      "Description: STAND-IN grafana, loki and alloy for the local fleet",
      "SHA256:",
      ...Object.entries(indexes).map(
        ([name, bytes]) => ` ${createHash("sha256").update(bytes).digest("hex")} ${bytes.length} ${name}`,
      ),
      "",
    ].join("\n");
    fs.writeFileSync(path.join(dists, "Release"), release);
    const sign = (args: string[]) =>
      run("gpg", ["--batch", "--yes", "--local-user", keyFingerprint, ...args, path.join(dists, "Release")], env);
    sign(["--clearsign", "--output", path.join(dists, "InRelease")]);
    sign(["--armor", "--detach-sign", "--output", path.join(dists, "Release.gpg")]);
    return {
      name: "grafana-standins",
      uri,
      suite,
      components,
      keyUrl: `${uri}/${KEY_FILE}`,
      keyFingerprint,
      keyringPath: GRAFANA_APT.keyringPath,
      dir,
      armoredKey,
      packages: packages.map((p) => ({ ...p, file: path.join(dir, poolPath(p)) })),
      newer: newer.map((p) => ({ ...p, file: path.join(dir, poolPath(p)) })),
    };
  } finally {
    // The agent gpg started for this home: stop it before its home goes.
    execFileSync("gpgconf", ["--kill", "all"], { env, stdio: "ignore" });
    fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(gnupg, { recursive: true, force: true });
  }
}

/** Debian's pool layout: pool/<component>/<first letter>/<source>/<file>. */
function poolPath(p: BuiltPackage): string {
  return path.join("pool", GRAFANA_APT.components[0], p.name[0], p.name, path.basename(p.file));
}
