"""The agent's names agree with the program's single source (facts/remediation.ts),
which Grafana's contact points, the alert rules and the agent's env file are
rendered from. The app ships without facts/, so the agent keeps its own copy."""
import os
import re

from remediation import agent, config as C
from support import APP_DIR

FACTS = os.path.join(os.path.dirname(APP_DIR), "facts", "remediation.ts")


def ts_source():
    with open(FACTS) as f:
        return f.read()


def string_list(name):
    m = re.search(rf"export const {name} = \[([^\]]*)\] as const;", ts_source())
    assert m, f"{name} not found in {FACTS}"
    return tuple(re.findall(r'"([^"]*)"', m.group(1)))


def string_const(name):
    m = re.search(rf'export const {name}(?:: \w+)? = "([^"]*)";', ts_source())
    assert m, f"{name} not found in {FACTS}"
    return m.group(1)


def test_allow_list_modes_and_results_match_the_facts():
    assert string_list("REMEDIATION_ACTIONS") == C.ACTIONS
    assert set(string_list("REMEDIATION_MODES")) == set(C.MODES)
    assert string_const("DEFAULT_REMEDIATION_MODE") == "on" == C.Config.__dataclass_fields__["mode"].default
    assert string_list("REMEDIATION_RESULTS") == C.DECISIONS


def test_headers_path_label_and_metric_match_the_facts():
    assert string_const("REMEDIATION_SIGNATURE_HEADER") == C.DEFAULT_SIGNATURE_HEADER
    assert string_const("REMEDIATION_TIMESTAMP_HEADER") == C.DEFAULT_TIMESTAMP_HEADER
    assert string_const("REMEDIATION_WEBHOOK_PATH") == agent.WEBHOOK_PATH
    assert string_const("REMEDIATION_LABEL") == C.REMEDIATION_LABEL
    assert string_const("REMEDIATION_METRIC") == C.METRIC
