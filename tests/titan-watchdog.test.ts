/**
 * titan.service lets systemd act on a hung gunicorn master by itself: the master says READY=1 and
 * pings WATCHDOG=1 (app/titan/watchdog.py; app/tests/test_watchdog.py proves the pings come from
 * the master's own pid, and stop while it is stopped or its loop is wedged), and the unit is what
 * makes systemd listen and act.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TITAN_WATCHDOG_SECONDS, unitsFor } from "../templates/host/units";
import { parseUnit, serviceDirective } from "./e2e/systemdUnit";

const titan = parseUnit(unitsFor("web").find((u) => u.path.endsWith("/titan.service"))?.content ?? "");

describe("titan.service and systemd's watchdog", () => {
  it("waits for the master's READY=1 and takes notifications from the main process only", () => {
    assert.equal(serviceDirective(titan, "Type"), "notify");
    // A worker (a child of the main process) never speaks for the service.
    assert.equal(serviceDirective(titan, "NotifyAccess"), "main");
  });

  it("restarts a master that has not pinged for WatchdogSec=", () => {
    assert.equal(serviceDirective(titan, "WatchdogSec"), String(TITAN_WATCHDOG_SECONDS));
    // The master's loop turns once a second; the pings come every WatchdogSec/2.
    assert.ok(TITAN_WATCHDOG_SECONDS >= 10, `WatchdogSec=${TITAN_WATCHDOG_SECONDS}`);
    // systemd counts a watchdog timeout as a failure: on-failure (or always) restarts it.
    assert.match(serviceDirective(titan, "Restart"), /^(on-failure|on-watchdog|on-abnormal|always)$/);
  });
});
