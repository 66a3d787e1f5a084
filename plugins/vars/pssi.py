"""Vars plugin ght.socle.pssi: the GHT's PSSI catalog reaches every play, not only `socle harden`'s.

The roles read their parameters and enforcement levels from ``ght_pssi_params`` and
``ght_pssi_enforcement``. `socle harden` passes them as extra vars; this plugin gives the same values
to a plain ``ansible-playbook`` run, AWX or a foreign playbook, computed by the ght-socle library from
the catalog and the GHT's settings file at every run (so a changed setting is never left behind in a
generated file).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.plugins.vars import BaseVarsPlugin

DOCUMENTATION = r"""
name: pssi
short_description: The PSSI catalog's effective parameters and enforcement levels for every host
version_added: "0.1.0"
description:
  - Loads the ght-socle PSSI catalog and the GHT settings file with the ght-socle library and
    returns C(ght_pssi_catalog_version), C(ght_pssi_params) and C(ght_pssi_enforcement) as variables
    of the C(all) group, exactly as C(socle harden) passes them.
  - A catalog or settings file that does not validate stops the run with the library's one-line error.
  - Needs the ght-socle Python package in the controller's Python; enable the plugin with
    C(vars_plugins_enabled = host_group_vars, ght.socle.pssi) in ansible.cfg.
options:
  catalog_dir:
    description:
      - The catalog directory (C(policies/catalog) of the GHT's ght-socle checkout).
      - Unset, the plugin of a checkout reads that checkout's catalog and settings; an installed collection
        falls back to the ght-socle library's default (C($SOCLE_ROOT)).
    type: path
    env:
      - name: GHT_SOCLE_CATALOG_DIR
    ini:
      - section: ght_socle
        key: catalog_dir
  settings:
    description: The GHT settings file (C(policies/ght-settings.yaml)).
    type: path
    env:
      - name: GHT_SOCLE_SETTINGS
    ini:
      - section: ght_socle
        key: settings
  stage:
    ini:
      - key: stage
        section: vars_pssi
    env:
      - name: ANSIBLE_VARS_PLUGIN_STAGE
extends_documentation_fragment:
  - vars_plugin_staging
"""


class VarsModule(BaseVarsPlugin):
    is_stateless = True

    # One catalog load per Ansible process and catalog: the plugin is called for every host and group.
    _computed: ClassVar[dict[tuple[str | None, str | None], dict[str, Any]]] = {}

    def get_vars(self, loader: Any, path: str, entities: Any, cache: bool = True) -> dict[str, Any]:
        super().get_vars(loader, path, entities)
        if not isinstance(entities, list):
            entities = [entities]
        if not any(isinstance(entity, Group) and entity.name == "all" for entity in entities):
            return {}
        catalog_dir = self.get_option("catalog_dir")
        settings = self.get_option("settings")
        key = (catalog_dir, settings)
        if key not in self._computed:
            self._computed[key] = _pssi_vars(catalog_dir, settings)
        return self._computed[key]


def _pssi_vars(catalog_dir: str | None, settings: str | None) -> dict[str, Any]:
    try:
        from ght_socle.catalog import load_catalog
        from ght_socle.errors import SocleError
        from ght_socle.harden import pssi_extravars
    except ImportError as exc:
        raise AnsibleError("ght.socle.pssi: the ght-socle Python package is not importable by the Python that "
                           f"runs Ansible ({exc}); install it there (pip install <ght-socle checkout>)") from None
    if not catalog_dir:
        # In a checkout the plugin sits at <checkout>/plugins/vars: its catalog is the checkout's, whatever
        # the working directory and wherever the library is installed. An installed collection has none.
        checkout = Path(__file__).resolve().parents[2]
        if (checkout / "policies" / "catalog").is_dir():
            catalog_dir = str(checkout / "policies" / "catalog")
            settings = settings or os.environ.get("SOCLE_SETTINGS") or str(checkout / "policies" / "ght-settings.yaml")
    try:
        catalog = load_catalog(Path(catalog_dir) if catalog_dir else None, Path(settings) if settings else None)
    except SocleError as exc:
        raise AnsibleError(f"ght.socle.pssi: {exc.render()}") from None
    return pssi_extravars(catalog)
