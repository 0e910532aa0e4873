/** A throwaway ed25519 key per run, made with ssh-keygen in the run directory. */
import * as fs from "node:fs";
import * as path from "node:path";
import { run } from "./exec";

export interface KeyPair {
  readonly privateKeyPath: string;
  readonly publicKey: string;
}

export function makeKeyPair(dir: string): KeyPair {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const privateKeyPath = path.join(dir, "id_ed25519");
  run("/usr/bin/ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "titan-fleet", "-f", privateKeyPath]);
  return { privateKeyPath, publicKey: fs.readFileSync(`${privateKeyPath}.pub`, "utf8").trim() };
}
