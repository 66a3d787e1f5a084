"""LOG: log forwarding to the collectors only over syslog/TLS."""

from __future__ import annotations

from collections.abc import Iterator

from ght_socle.policy.helpers import (
    SECGROUP_RULE,
    describe_rule,
    format_range,
    prefix_within,
    remote_group_of_rule,
    remote_prefix,
    rule_opens,
    secgroup_of_rule,
    subnet_cidrs_of_zone,
    zone_of_secgroup,
)
from ght_socle.policy.model import PolicyContext, Stack, Violation
from ght_socle.policy.registry import stack_policy

LOG_ZONE = "log"
# Plain syslog: 514 (UDP syslog, TCP rsh/syslog) and 601 (syslog over TCP, RFC 3195): protocol facts.
PLAIN_SYSLOG_PORTS = [(514, 514), (601, 601)]


@stack_policy("log-collector-flow-tls", "LOG-003", "Flows to the log collectors use syslog over TLS only",
              [SECGROUP_RULE], fix="Open only the collector's TLS port towards the log zone in the flows.")
def log_collector_flow_tls(stack: Stack, ctx: PolicyContext) -> Iterator[Violation]:
    tls_port = int(ctx.param("collector_port"))
    log_cidrs = subnet_cidrs_of_zone(stack, LOG_ZONE)
    for rule in stack.of_type(SECGROUP_RULE):
        plain = [p for p in rule_opens(rule, PLAIN_SYSLOG_PORTS) if not p[0] <= tls_port <= p[1]]
        if not plain:
            continue
        direction = str(rule.get("direction", "ingress"))
        if direction == "ingress":
            towards_log = zone_of_secgroup(secgroup_of_rule(stack, rule)) == LOG_ZONE
        else:
            prefix = remote_prefix(rule)
            towards_log = zone_of_secgroup(remote_group_of_rule(stack, rule)) == LOG_ZONE or (
                prefix is not None and prefix_within(prefix, log_cidrs))
        if towards_log:
            yield Violation(f"{describe_rule(rule)} carries plain syslog "
                            f"({', '.join(format_range(p) for p in plain)}) to the log zone; use {tls_port}/tcp",
                            rule)
