"""Conformance suites: one test per PSSI rule with a host check point.

Run them with ``socle conform --inventory inventories/<env>`` (batched facts, hosts in parallel,
waivers, reports), or as plain testinfra suites::

    pytest tests/conformance --ansible-inventory=inventories/lab/hosts.yml --hosts='ansible://all' -n 5
    pytest tests/conformance --ansible-inventory=inventories/lab/hosts.yml \
        --ssh-config=inventories/lab/ssh_config --hosts='ssh://app-01?timeout=60,ssh://app-02?timeout=60'

The inventory gives each host's groups (rules outside them are skipped as not applicable); the
gathering uses ``sudo -n`` itself, so ``--sudo`` is not needed. testinfra's ansible backend keeps
its 10 s connection timeout, short for a busy emulated lab: the second form sets it per host.

Each test takes ``facts`` (everything gathered from the host in one remote command) and
``pssi_rule`` (the rule's effective parameters from the catalog and the GHT settings) and ends with
``fail_on(problems)``: every observation that breaks the rule becomes evidence in the report.

The plugin (``ght_socle.conform.plugin``) is a ``pytest11`` entry point of the installed package, so
these suites run from any directory, alone or with others; it stays idle in sessions without them.
"""
