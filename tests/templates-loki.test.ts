import assert from "node:assert/strict";
import { isIP } from "node:net";
import { describe, it } from "node:test";
import YAML from "yaml";
import { addressPlan } from "../facts/addressing";
import { loadConfig } from "../infra/config";
import { SERVICES } from "../facts/topology";
import { instanceMemoryMiB } from "../facts/instanceMemory";
import {
  LOKI_CONFIG_PATH,
  LOKI_CONFIGURED_PATH,
  LOKI_INSTANCE_ADDR,
  LOKI_SCHEMA_FROM,
  lokiConfig,
  lokiReplayMemoryCeiling,
  lokiRetentionHours,
  renderLokiConfig,
  renderLokiFiles,
} from "../templates/loki/config";
import { LOKI_AWS_KEYS, LOKI_BLOCK_KEYS, LOKI_TOP_LEVEL_KEYS } from "../templates/loki/model";
import type { TemplateContext } from "../templates/types";

const BUCKET = "titan-observability-dev-loki-0123abcd";

function context(values: Record<string, string> = {}): TemplateContext {
  const all: Record<string, string> = { allowedCidrs: '["203.0.113.7/32"]', "aws:region": "eu-west-1", ...values };
  const config = loadConfig(
    { get: (key) => all[key], isSecret: () => undefined },
    { project: "titan-observability", stack: "dev" },
  );
  return { config, plan: addressPlan(config.vpcCidr, config.webCount), lokiBucket: BUCKET };
}

type Doc = Record<string, Record<string, unknown>> & Record<string, unknown>;
const rendered = (ctx = context()): Doc => YAML.parse(renderLokiConfig(ctx).content) as Doc;
const keysOf = (value: unknown): string[] => Object.keys(value as Record<string, unknown>);

describe("Loki config", () => {
  it("lands at the path the Debian package's unit reads, readable by group loki only", () => {
    const file = renderLokiConfig(context());
    assert.equal(file.path, LOKI_CONFIG_PATH);
    assert.equal(file.path, "/etc/loki/config.yml");
    assert.deepEqual([file.owner, file.group, file.mode], ["root", "loki", 0o640]);
  });

  it("has exactly the allowed top-level keys and no unknown key in any block", () => {
    const doc = rendered();
    assert.deepEqual(keysOf(doc), [...LOKI_TOP_LEVEL_KEYS]);
    for (const [blockName, allowed] of Object.entries(LOKI_BLOCK_KEYS)) {
      const unknown = keysOf(doc[blockName]).filter((k) => !(allowed as readonly string[]).includes(k));
      assert.deepEqual(unknown, [], `unknown keys in ${blockName}`);
    }
    assert.deepEqual(keysOf(doc.storage_config.aws), [...LOKI_AWS_KEYS]);
  });

  it("runs as one single binary without auth, and says why that is safe", () => {
    const doc = rendered();
    assert.equal(doc.target, "all");
    assert.equal(doc.auth_enabled, false);
    assert.match(renderLokiConfig(context()).content, /^# .*security group.*\n(# .*\n)*auth_enabled: false$/m);
    assert.deepEqual(doc.common, {
      instance_addr: "127.0.0.1",
      path_prefix: "/var/lib/loki",
      replication_factor: 1,
      ring: { kvstore: { store: "inmemory" } },
    });
  });

  it("tells every component its address, so Loki never reads the network interfaces", () => {
    // Where Loki 3.7 looks its address up from the interfaces (over AF_NETLINK) when none is
    // configured, and where the configured one comes from (grafana/loki v3.7.6):
    // - pkg/loki/config_wrapper.go applyInstanceConfigs: common.instance_addr, when set, becomes the
    //   ring's address (unless common.ring.instance_addr overrides it), the query frontend's address
    //   and memberlist's advertise address; common.ring.instance_addr feeds the rings alone.
    // - pkg/lokifrontend/frontend/config.go: an empty frontend address means GetFirstAddressOf().
    // - vendor/github.com/grafana/dskit/ring/util.go GetInstanceAddr: the same for a ring.
    // - pkg/loki/modules.go initMemberlistKV: the same for memberlist.
    const common = rendered().common as { instance_addr?: unknown; ring?: { instance_addr?: unknown } };
    const instance = typeof common.instance_addr === "string" ? common.instance_addr : "";
    const ringOwn = typeof common.ring?.instance_addr === "string" ? common.ring.instance_addr : "";
    const derived = { ring: ringOwn || instance, frontend: instance, memberlist: instance };
    for (const [component, addr] of Object.entries(derived)) {
      assert.ok(isIP(addr) !== 0, `${component}: no configured address, so Loki enumerates interfaces (got "${addr}")`);
    }
    // Upstream's own single-binary config (cmd/loki/loki-local-config.yaml) sets exactly this.
    assert.equal(common.instance_addr, "127.0.0.1");
    assert.equal(common.ring?.instance_addr, undefined, "the ring inherits common.instance_addr");
    assert.match(
      renderLokiConfig(context()).content,
      /^ {2}# .*interfaces.*\n(?: {2}# .*\n)* {2}instance_addr: 127\.0\.0\.1$/m,
    );
  });

  it("gives the push the configuration first, then the mark the unit's condition waits for", () => {
    const files = renderLokiFiles(context());
    assert.deepEqual(
      files.map((f) => f.path),
      [LOKI_CONFIG_PATH, LOKI_CONFIGURED_PATH],
    );
    assert.deepEqual(files[0], renderLokiConfig(context()));
    assert.ok(LOKI_CONFIGURED_PATH.startsWith("/etc/loki/"), "a change restarts Loki like the config's");
  });

  it("serves gRPC on loopback only, where the ring and the querier worker dial it", () => {
    const server = rendered().server;
    assert.equal(server.grpc_listen_address, "127.0.0.1");
    // The ring advertises instance_addr:grpc_listen_port; the querier worker dials
    // 127.0.0.1:grpc_listen_port (pkg/querier/worker_service.go): both reach a loopback listener.
    assert.equal(rendered().common.instance_addr, LOKI_INSTANCE_ADDR);
    assert.equal(server.grpc_listen_address, LOKI_INSTANCE_ADDR);
    assert.equal(server.http_listen_address, undefined, "HTTP stays on every interface: clients push and query there");
  });

  it("bounds the WAL replay to half the Loki host's memory, not Loki's 4GB default", () => {
    const wal = (ctx: TemplateContext) => (rendered(ctx).ingester as { wal: Record<string, unknown> }).wal;
    assert.deepEqual(wal(context()), { replay_memory_ceiling: "1024MB" }, "t3.small: 2 GiB");
    assert.equal(wal(context({ lokiInstanceType: "t3.medium" })).replay_memory_ceiling, "2048MB");
    assert.equal(wal(context({ lokiInstanceType: "r6i.xlarge" })).replay_memory_ceiling, "16384MB");
    assert.equal(lokiReplayMemoryCeiling("t4g.nano"), "256MB");
    assert.deepEqual(
      ["t3.micro", "t4g.2xlarge", "m5.large", "c7g.medium", "r6i.4xlarge"].map(instanceMemoryMiB),
      [1024, 32768, 8192, 2048, 131072],
    );
    assert.throws(
      () => lokiConfig(context({ lokiInstanceType: "x2idn.16xlarge" })),
      /lokiInstanceType = "x2idn\.16xlarge": expected a t2\/t3\/t3a\/t4g type .* whose memory is known/,
    );
    assert.throws(() => lokiReplayMemoryCeiling("t3.huge"), /lokiInstanceType = "t3\.huge"/);
  });

  it("listens on the topology's Loki port", () => {
    const server = rendered().server;
    assert.equal(server.http_listen_port, SERVICES.loki.port);
    assert.equal(server.http_listen_port, 3100);
    assert.equal(typeof server.grpc_listen_port, "number");
    assert.notEqual(server.grpc_listen_port, server.http_listen_port);
  });

  it("stores in the stack's bucket and region through the instance profile, with no keys", () => {
    const ctx = context();
    const doc = rendered(ctx);
    const storage = doc.storage_config as { use_thanos_objstore: boolean; aws: Record<string, unknown> };
    assert.equal(storage.use_thanos_objstore, false, "the 3.7 line's legacy aws block, said explicitly");
    assert.equal(storage.aws.bucketnames, BUCKET);
    assert.equal(storage.aws.region, "eu-west-1");
    const text = renderLokiConfig(ctx).content;
    for (const secret of ["access_key_id", "secret_access_key", "session_token", "s3://", "AKIA"]) {
      assert.ok(!text.includes(secret), `found ${secret} in the Loki config`);
    }
    const other = rendered({ ...context({ "aws:region": "ap-southeast-2" }), lokiBucket: "other-bucket" });
    assert.deepEqual(other.storage_config.aws, {
      bucketnames: "other-bucket",
      region: "ap-southeast-2",
      s3forcepathstyle: false,
    });
  });

  it("uses one tsdb/v13 schema with a daily index from the fixed date", () => {
    const { configs } = rendered().schema_config as { configs: Record<string, unknown>[] };
    assert.equal(configs.length, 1);
    assert.deepEqual(configs[0], {
      from: LOKI_SCHEMA_FROM,
      store: "tsdb",
      object_store: "s3",
      schema: "v13",
      index: { prefix: "index_", period: "24h" },
    });
    assert.match(LOKI_SCHEMA_FROM, /^\d{4}-\d{2}-\d{2}$/);
  });

  it("enables retention in the compactor, with the delete-request store it requires", () => {
    const compactor = rendered().compactor;
    assert.equal(compactor.retention_enabled, true);
    assert.equal(compactor.delete_request_store, "s3");
    assert.match(String(compactor.retention_delete_delay), /^\d+[hm]$/);
    assert.match(String(compactor.working_directory), /^\/var\/lib\/loki\//);
  });

  it("keeps lokiRetentionDays x 24 hours, following the config", () => {
    assert.equal(rendered().limits_config.retention_period, "168h");
    assert.equal(rendered(context({ lokiRetentionDays: "30" })).limits_config.retention_period, "720h");
    assert.equal(rendered(context({ lokiRetentionDays: "1" })).limits_config.retention_period, "24h");
    assert.equal(lokiRetentionHours(7), 168);
    assert.throws(() => lokiRetentionHours(0));
    assert.throws(() => lokiRetentionHours(1.5));
  });

  it("sets limits sized for one small host", () => {
    const limits = rendered().limits_config;
    assert.equal(limits.reject_old_samples, true);
    for (const key of [
      "ingestion_rate_mb",
      "ingestion_burst_size_mb",
      "max_global_streams_per_user",
      "max_query_series",
      "max_query_parallelism",
    ]) {
      assert.equal(typeof limits[key], "number", key);
      assert.ok((limits[key] as number) > 0, key);
    }
    assert.ok((limits.ingestion_burst_size_mb as number) >= (limits.ingestion_rate_mb as number));
    assert.ok((limits.max_global_streams_per_user as number) <= 10_000, "a small host, not a cluster");
    assert.deepEqual(limits.discover_service_name, [], "no service_name label beyond the Alloy contract");
  });

  it("turns usage reporting off", () => {
    assert.deepEqual(rendered().analytics, { reporting_enabled: false });
  });

  it("renders the model as is (the YAML is a faithful image of lokiConfig)", () => {
    const ctx = context({ lokiRetentionDays: "14" });
    assert.deepEqual(rendered(ctx), JSON.parse(JSON.stringify(lokiConfig(ctx))));
  });
});
