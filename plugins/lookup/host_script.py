"""Lookup ght.socle.host_script: a script the roles install on the hosts, from the ght-socle library.

The conformance fact gatherer that the ``reverify`` role installs must be the very script
``socle conform`` sends over SSH, with the same request: the library builds both, so the host's
re-verification and the controller's conformance can never read different facts.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: host_script
short_description: Text of a host-side script of the ght-socle library (fact gatherer, re-verification agent)
version_added: "0.1.0"
description:
  - C(gather) returns the conformance fact gatherer with the request computed from O(params)
    (the rules' effective parameters, C(ght_pssi_params)); C(agent) returns the re-verification agent.
  - Needs the ght-socle Python package in the controller's Python.
options:
  _terms:
    description: C(gather) or C(agent).
    required: true
  params:
    description: The PSSI rules' effective parameters (C(ght_pssi_params)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Install the fact gatherer
  ansible.builtin.copy:
    content: "{{ lookup('ght.socle.host_script', 'gather', params=ght_pssi_params) }}"
    dest: /usr/local/lib/ght-socle/gather.py
    mode: "0700"
"""

RETURN = r"""
_raw:
  description: The script's text, one element per term.
  type: list
  elements: str
"""


class LookupModule(LookupBase):
    def run(self, terms: list[Any], variables: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
        self.set_options(var_options=variables, direct=kwargs)
        try:
            from ght_socle.reverify.scripts import host_script
        except ImportError as exc:
            raise AnsibleLookupError(f"the ght-socle library is not importable on the controller: {exc}") from exc
        params = self.get_option("params") or {}
        try:
            return [host_script(str(term), params) for term in terms]
        except ValueError as exc:
            raise AnsibleLookupError(str(exc)) from exc
