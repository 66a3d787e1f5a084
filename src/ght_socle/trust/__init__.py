"""The trust boundary: every value read from a file, a stack output or the command line is checked
here before it can reach a generated artefact (ssh_config, known_hosts, Ansible inventory, cloud-init
user-data, file paths, reports).

* :mod:`ght_socle.trust.grammar`: strict, typed grammars (host, user and group names, DNS domains,
  IPv4 addresses, URLs, stack names, free text) as plain checks and as pydantic annotated types;
* :mod:`ght_socle.trust.yamlio`: the one YAML loading path (size and alias limits, no implicit
  dates, encoding errors as bad input) and the Ansible-safe YAML emitter (``!unsafe`` strings);
* :mod:`ght_socle.trust.files`: the one helper every command writes files with (atomic, inside
  the directory it belongs to, never through a symlink);
* :mod:`ght_socle.trust.sshconfig`: ssh_config lines from checked values, quoted and escaped.

docs/security.md says what is checked where.
"""
