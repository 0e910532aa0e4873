/**
 * The policy pack as the Pulumi engine runs it, so tests judge the pack's own code: the real
 * @pulumi/policy server started the way the engine's analyzer plugin starts it, and asked over
 * gRPC exactly what the engine asks.
 *
 * - Start: the engine starts a nodejs pack through the nodejs language host's RunPlugin
 *   (pulumi sdk/go/common/resource/plugin/analyzer_plugin.go, NewPolicyAnalyzer; older CLIs
 *   through the `pulumi-analyzer-policy` script) with policy/ as the working directory; both
 *   run @pulumi/pulumi/cmd/run-policy-pack, resolved upward from that directory, which drops
 *   the engine's address, registers ts-node (type-checking, reading the pack's tsconfig.json)
 *   and requires the pack. `new PolicyPack` (@pulumi/policy server.js `serve`) listens on
 *   127.0.0.1 and prints the port on stdout. The language host's policy proxy and the
 *   PULUMI_CONFIG it passes (policy config) are not reproduced: the pack reads no config.
 * - Ask: Analyze with one resource's inputs and AnalyzeStack with every resource's outputs,
 *   marshalled with KeepUnknowns and KeepSecrets (analyzer_plugin.go); @pulumi/policy unwraps
 *   secrets before a policy reads them (deserialize.js), so the mock's unwrapped inputs are what
 *   a policy sees. An unknown (a value a preview cannot know yet) travels as the sentinel
 *   string of @pulumi/pulumi runtime/rpc.ts `unknownValue`.
 *
 * What it cannot prove: which inputs the engine sends after the provider's Check (defaults a
 * provider adds are absent here); which outputs a real preview leaves unknown (the mocks know
 * every output, so tests mark them by hand, from the provider's schema); and the CLI's own
 * rendering of the diagnostics.
 */
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import {
  AnalyzeRequest,
  AnalyzeStackRequest,
  AnalyzerPropertyDependencies,
  AnalyzerResource,
  AnalyzerResourceOptions,
  EnforcementLevel,
  type AnalyzeResponse,
} from "@pulumi/pulumi/proto/analyzer_pb";
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { ROOT } from "./files";
import type { RecordedResource } from "./mockProgram";

export const PACK_DIR = path.join(ROOT, "policy");

/** Marks a property as not known yet, as a preview sends a new resource's computed values. */
export const UNKNOWN = unknownValue;

export interface Diagnostic {
  readonly policy: string;
  readonly level: "advisory" | "mandatory";
  readonly message: string;
  readonly urn: string;
}

export interface PackPolicy {
  readonly name: string;
  readonly level: "advisory" | "mandatory" | "disabled" | "remediate";
  readonly description: string;
}

const LEVELS: Record<EnforcementLevel, PackPolicy["level"]> = {
  [EnforcementLevel.ADVISORY]: "advisory",
  [EnforcementLevel.MANDATORY]: "mandatory",
  [EnforcementLevel.DISABLED]: "disabled",
  [EnforcementLevel.REMEDIATE]: "remediate",
};

/** A resource as the engine describes it to an analyzer. */
export type PackResource = Pick<RecordedResource, "type" | "name" | "urn" | "parent" | "dependencies"> & {
  readonly props: Record<string, unknown>;
  readonly propertyDependencies: Record<string, string[]>;
};

/** Inputs for Analyze (the engine checks what is about to be created or updated). */
export const asInputs = (r: RecordedResource): PackResource => ({ ...r, props: r.inputs });
/** Outputs for AnalyzeStack (the engine checks the stack as the operation leaves it). */
export const asOutputs = (r: RecordedResource): PackResource => ({ ...r, props: r.state ?? r.inputs });

/** JSON has no undefined: the engine omits an unset property (policy deserialize.js does too). */
const toStruct = (props: Record<string, unknown>) =>
  Struct.fromJavaScript(JSON.parse(JSON.stringify(props)) as Parameters<typeof Struct.fromJavaScript>[0]);

function options(r: PackResource) {
  return new AnalyzerResourceOptions().setParent(r.parent);
}

function toDiagnostics(response: AnalyzeResponse): Diagnostic[] {
  return response.getDiagnosticsList().map((d) => ({
    policy: d.getPolicyname(),
    level: LEVELS[d.getEnforcementlevel()] as Diagnostic["level"],
    message: d.getMessage(),
    urn: d.getUrn(),
  }));
}

export class RunningPack {
  private constructor(
    private readonly child: ChildProcess,
    private readonly client: AnalyzerClient,
  ) {}

  /** Starts the pack in `dir` and resolves once its server has printed the port it listens on. */
  static async start(dir = PACK_DIR): Promise<RunningPack> {
    const runner = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", { paths: [dir] });
    // The engine's address comes first; run-policy-pack drops it (cmd/run-policy-pack/index.ts).
    const child = spawn(process.execPath, [runner, "127.0.0.1:0", "."], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
        const line = /^(\d+)\n/.exec(stdout);
        if (line) resolve(Number(line[1]));
      });
      child.on("exit", (code, signal) =>
        reject(new Error(`the policy pack exited (${code ?? signal}) before listening:\n${stdout}${stderr}`)),
      );
    });
    const client = new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return new RunningPack(child, client);
  }

  async policies(): Promise<PackPolicy[]> {
    const info = await new Promise<import("@pulumi/pulumi/proto/analyzer_pb").AnalyzerInfo>((resolve, reject) =>
      this.client.getAnalyzerInfo(new Empty(), (err, res) => (err ? reject(err) : resolve(res))),
    );
    return info.getPoliciesList().map((p) => ({
      name: p.getName(),
      level: LEVELS[p.getEnforcementlevel()],
      description: p.getDescription(),
    }));
  }

  /** The engine's per-resource check, run before each create or update. */
  async analyze(r: PackResource): Promise<Diagnostic[]> {
    const request = new AnalyzeRequest()
      .setType(r.type)
      .setName(r.name)
      .setUrn(r.urn)
      .setProperties(toStruct(r.props))
      .setOptions(options(r));
    const response = await new Promise<AnalyzeResponse>((resolve, reject) =>
      this.client.analyze(request, (err, res) => (err ? reject(err) : resolve(res))),
    );
    return toDiagnostics(response);
  }

  /** The engine's whole-stack check, run once the resources are known. */
  async analyzeStack(resources: readonly PackResource[]): Promise<Diagnostic[]> {
    const request = new AnalyzeStackRequest().setResourcesList(
      resources.map((r) => {
        const resource = new AnalyzerResource()
          .setType(r.type)
          .setName(r.name)
          .setUrn(r.urn)
          .setProperties(toStruct(r.props))
          .setOptions(options(r))
          .setParent(r.parent)
          .setDependenciesList([...r.dependencies]);
        const deps = resource.getPropertydependenciesMap();
        for (const [input, urns] of Object.entries(r.propertyDependencies)) {
          deps.set(input, new AnalyzerPropertyDependencies().setUrnsList(urns));
        }
        return resource;
      }),
    );
    const response = await new Promise<AnalyzeResponse>((resolve, reject) =>
      this.client.analyzeStack(request, (err, res) => (err ? reject(err) : resolve(res))),
    );
    return toDiagnostics(response);
  }

  /** Stops the pack by its pid and waits until it is gone. */
  async stop(): Promise<void> {
    this.client.close();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGTERM");
    await exited;
  }
}
