/**
 * The fleet's webhook (checks/remediation.ts) is one the agent accepts: its body parses with the
 * agent's own Grafana payload reader and its headers verify with the agent's own signature check
 * (app/remediation), so a refusal on the fleet is the agent's decision, not a malformed request.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { REMEDIATION_HEADERS } from "../../facts/remediation";
import { projectRoot } from "../../templates/projectFiles";
import { grafanaWebhookBody, signatureHeaders } from "./checks/remediation";

const PYTHON = `
import json, sys
from remediation import payload, signature
req = json.load(sys.stdin)
body = req["body"].encode()
signature.verify(req["secret"].encode(), req["signature"], req["timestamp"], body, int(req["timestamp"]), 300)
alerts = payload.parse(body)
print(json.dumps([{"status": a.status, "labels": a.labels} for a in alerts]))
`;

test("the fleet's signed Grafana-shaped webhook verifies and parses with the agent's own code", () => {
  const secret = "s3cret-of-48-characters-as-the-stack-makes-it-xx";
  const body = grafanaWebhookBody("titan remediation", [
    { alertname: "AppNotAnswering", instance: "titan-dev-web-1", remediation: "restart-app" },
  ]);
  const now = 1_760_000_000;
  const headers = signatureHeaders(secret, body, now);
  const r = spawnSync("/usr/bin/python3", ["-c", PYTHON], {
    cwd: path.join(projectRoot(), "app"),
    env: { ...process.env, PYTHONPATH: path.join(projectRoot(), "app"), PYTHONDONTWRITEBYTECODE: "1" },
    input: JSON.stringify({
      secret,
      body,
      signature: headers[REMEDIATION_HEADERS.signature],
      timestamp: headers[REMEDIATION_HEADERS.timestamp],
    }),
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const alerts = JSON.parse(r.stdout) as { status: string; labels: Record<string, string> }[];
  assert.equal(alerts.length, 1);
  assert.equal(alerts[0].status, "firing");
  assert.equal(alerts[0].labels.remediation, "restart-app");
  assert.equal(alerts[0].labels.instance, "titan-dev-web-1");
});
