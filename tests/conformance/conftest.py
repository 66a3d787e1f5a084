"""Conformance suites: one test per PSSI rule with a host check point.

Run them with ``socle conform --inventory inventories/<env>`` (batched facts, hosts in parallel,
waivers, reports), or as plain testinfra suites::

    pytest tests/conformance --ansible-inventory=inventories/lab/hosts.yml --hosts='ansible://all' -n 5

Each test takes ``facts`` (everything gathered from the host in one remote command) and
``pssi_rule`` (the rule's effective parameters from the catalog and the GHT settings) and ends with
``fail_on(problems)``: every observation that breaks the rule becomes evidence in the report.
"""

pytest_plugins = ("ght_socle.conform.plugin",)
