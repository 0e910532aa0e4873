/**
 * Whether the operator running `npm run deploy` can reach the hosts: their public IP must lie
 * inside one of `allowedCidrs`, or SSH (and with it the configuration push) times out minutes
 * into `pulumi up`. scripts/deploy.sh asks this before `pulumi up` starts, through the small
 * command-line entry at the bottom (run with ts-node, which the Pulumi program needs anyway).
 */
import { parseArgs } from "node:util";
import { contains, formatCidr, parseCidr, parseIpv4, type Cidr } from "../facts/cidr";

export type Mode = "local" | "shared";

export interface AccessInput {
  /** The operator's public IPv4 address. */
  readonly ip: string;
  /** Where the address came from, for messages ("checkip.amazonaws.com", "TITAN_OPERATOR_IP"). */
  readonly ipSource: string;
  /** `pulumi config get allowedCidrs` as printed, or "" when the key is unset. */
  readonly allowedCidrs: string;
  readonly stack: string;
  /** local: the operator's own stack; shared: the team's stack on the shared backend. */
  readonly mode: Mode;
}

export type Verdict =
  | { readonly action: "proceed" }
  /** Local mode, key unset: set allowedCidrs[0] to this /32. */
  | { readonly action: "set"; readonly cidr: string }
  | { readonly action: "refuse"; readonly message: string };

/**
 * The list as Pulumi prints it. A list set with `--path 'allowedCidrs[0]'` is a structured value
 * and `pulumi config get` prints it as JSON (pulumi/pulumi pkg/cmd/pulumi/config/config_get.go
 * prints the raw value, which is the JSON text for object values); a value set without --path is
 * a plain string, which facts/config.ts also accepts comma-separated.
 */
export function parseCidrList(raw: string): Cidr[] | string {
  const text = raw.trim();
  let items: unknown;
  if (text.startsWith("[")) {
    try {
      items = JSON.parse(text);
    } catch {
      return `allowedCidrs = ${JSON.stringify(raw)}: expected a JSON list of IPv4 CIDRs, e.g. ["203.0.113.7/32"]`;
    }
  } else {
    items = text.split(",").map((s) => s.trim());
  }
  if (!Array.isArray(items)) return `allowedCidrs = ${JSON.stringify(raw)}: expected a list of IPv4 CIDRs`;
  const cidrs: Cidr[] = [];
  for (const item of items) {
    const cidr = typeof item === "string" ? parseCidr(item) : undefined;
    if (!cidr) {
      return `allowedCidrs = ${JSON.stringify(raw)}: expected IPv4 CIDRs in canonical form; ${JSON.stringify(item)} is not one`;
    }
    cidrs.push(cidr);
  }
  return cidrs;
}

// Through npm run pulumi (scripts/pulumi.sh): a bare `pulumi` talks to the operator's default
// backend, not the one deploy.sh used; STACK makes it select a stack other than its default dev.
const setCommand = (stack: string, index: number, value: string) =>
  `${stack === "dev" ? "" : `STACK=${stack} `}npm run pulumi -- config set --stack ${stack} --path 'allowedCidrs[${index}]' ${value}`;

export function operatorAccess(input: AccessInput): Verdict {
  const address = parseIpv4(input.ip);
  if (address === undefined) {
    return {
      action: "refuse",
      message:
        `${input.ipSource} gave ${JSON.stringify(input.ip)}: expected an IPv4 address such as 203.0.113.7. ` +
        `Give your public IP yourself: TITAN_OPERATOR_IP=<your-ip> npm run deploy`,
    };
  }
  const own: Cidr = { base: address, prefix: 32 };
  const ownText = `${input.ip}/32`;
  const fileNote = `Pulumi.${input.stack}.yaml`;

  if (input.allowedCidrs.trim() === "") {
    if (input.mode === "local") return { action: "set", cidr: ownText };
    return {
      action: "refuse",
      message:
        `allowedCidrs is not set in ${fileNote}. This is the shared stack: its allowedCidrs are the team's ` +
        `and live in the committed stack file, so deploy.sh does not write your address there. ` +
        `Add a team CIDR that covers you (a VPN or office range, or your ${ownText}) and commit ${fileNote}: ` +
        setCommand(input.stack, 0, "<team-cidr>"),
    };
  }

  const cidrs = parseCidrList(input.allowedCidrs);
  if (typeof cidrs === "string") return { action: "refuse", message: cidrs };
  if (cidrs.some((cidr) => contains(cidr, own))) return { action: "proceed" };

  const listed = JSON.stringify(cidrs.map(formatCidr));
  const why =
    `your public IP ${input.ip} (from ${input.ipSource}) is not inside allowedCidrs ${listed}: ` +
    `SSH, and with it the configuration push, would time out minutes into pulumi up.`;
  if (input.mode === "shared") {
    return {
      action: "refuse",
      message:
        `${why} This is the shared stack, whose allowedCidrs are committed in ${fileNote}: add a team CIDR ` +
        `that covers you (or your ${ownText}) in a pull request: ${setCommand(input.stack, cidrs.length, "<team-cidr>")}`,
    };
  }
  // deploy.sh set a single /32 on first use: the usual cause is that address having changed.
  const replace = cidrs.length === 1 && cidrs[0].prefix === 32;
  return {
    action: "refuse",
    message: `${why} Fix: ${setCommand(input.stack, replace ? 0 : cidrs.length, ownText)}`,
  };
}

/** deploy.sh's entry: prints the CIDR to set on stdout, or the reason to stop on stderr (exit 1). */
function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv,
    options: {
      ip: { type: "string" },
      "ip-source": { type: "string" },
      "allowed-cidrs": { type: "string", default: "" },
      stack: { type: "string" },
      mode: { type: "string" },
    },
    strict: true,
  });
  const mode = values.mode;
  if (mode !== "local" && mode !== "shared") {
    process.stderr.write(`--mode ${JSON.stringify(mode)}: expected local or shared\n`);
    return 2;
  }
  if (values.ip === undefined || values.stack === undefined) {
    process.stderr.write("--ip and --stack are required\n");
    return 2;
  }
  const verdict = operatorAccess({
    ip: values.ip,
    ipSource: values["ip-source"] ?? "the IP lookup",
    allowedCidrs: values["allowed-cidrs"] ?? "",
    stack: values.stack,
    mode,
  });
  if (verdict.action === "refuse") {
    process.stderr.write(`titan: ${verdict.message}\n`);
    return 1;
  }
  if (verdict.action === "set") process.stdout.write(`${verdict.cidr}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
