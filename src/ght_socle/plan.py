"""Run a Pulumi Python program offline under Pulumi's mock engine and return what it declares.

``run_plan`` is ``socle plan``'s engine and the entry point policies, the lab and the inventory use
to read a stack without the Pulumi CLI or a cloud. It follows what ``pulumi preview`` does with a
Python program, with the engine replaced by :class:`pulumi.runtime.mocks.MockMonitor`:

* ``Pulumi.yaml`` gives the project ``name``, ``runtime`` (must be python), ``main`` (default ``.``)
  and ``stackConfigDir`` (default ``.``);
* the stack configuration comes from ``<stackConfigDir>/Pulumi.<stack>.yaml`` or from an explicit
  file; keys are namespaced ``<project>:<key>`` as Pulumi does, structured values are handed to the
  program as JSON strings (as the CLI does), and ``secure:`` values, which cannot be decrypted
  offline, become a stable placeholder and are marked secret;
* every registered resource is recorded with its parent URN and its *inputs* under the provider's
  wire (camelCase) names, secrets unwrapped in memory and listed in ``secret_keys``;
* stack outputs (``pulumi.export``) are resolved to plain data; a secret export is masked, as
  ``pulumi stack output`` does without ``--show-secrets``.

Pulumi keeps its runtime state in process globals (settings, root stack, configuration). They are
saved before a run and restored after it, so a process (tests, benchmark) can plan many times.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import sys
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import config as pulumi_config
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _sync_await
from pulumi_policy.deserialize import SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY

from ght_socle import paths
from ght_socle.errors import ConfigError, SocleError
from ght_socle.plan_model import SECRET_MASK, Plan, PlannedResource
from ght_socle.trust import yamlio
from ght_socle.trust.grammar import check_stack_name

STACK_TYPE = "pulumi:pulumi:Stack"
DEFAULT_STACK = "dev"

# The stack configuration file of the plan being run, so a program's own validation can name the
# file the operator passed with --config (under the real CLI it is unset: Pulumi.<stack>.yaml).
_CURRENT_CONFIG_FILE: ContextVar[Path | None] = ContextVar("ght_socle_plan_config_file", default=None)


def current_config_file() -> Path | None:
    """The stack configuration file ``run_plan`` is planning with, None outside an offline plan."""
    return _CURRENT_CONFIG_FILE.get()


def running_offline() -> bool:
    """True while ``run_plan`` runs a program under the mock engine, False under the real CLI."""
    return _CURRENT_CONFIG_FILE.get() is not None

# Settings attributes Pulumi keeps per process (context properties of pulumi.runtime.settings.SETTINGS).
_SETTINGS_ATTRIBUTES = (
    "rpc_manager", "lock", "outputs", "monitor", "engine", "organization", "project", "root_directory",
    "stack", "parallel", "dry_run", "legacy_apply_enabled", "monitor_features", "package_refs",
    "base_providers_by_ref", "callbacks",
)


@dataclass
class PulumiProject:
    """The parts of ``Pulumi.yaml`` the offline plan needs."""

    file: Path
    name: str
    main_file: Path
    stack_config_dir: Path

    @property
    def program_dir(self) -> Path:
        return self.main_file.parent

    def stack_config_file(self, stack: str) -> Path:
        try:
            check_stack_name(stack)
        except ValueError as exc:
            raise ConfigError(str(exc), where="stack") from None
        return self.stack_config_dir / f"Pulumi.{stack}.yaml"


def _load_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    raw = yamlio.load_yaml(path, what=what)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} must be a YAML mapping", file=path)
    return raw


def load_project(program_dir: Path | None = None) -> PulumiProject:
    """Read ``Pulumi.yaml`` in ``program_dir`` (default: the project root)."""
    directory = (program_dir or paths.project_root()).resolve()
    project_file = directory / "Pulumi.yaml"
    if not project_file.is_file():
        raise ConfigError("no Pulumi.yaml: not a Pulumi program directory", file=directory)
    raw = _load_yaml_mapping(project_file, "Pulumi.yaml")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("missing project name", file=project_file, where="key name")
    runtime = raw.get("runtime")
    runtime_name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if runtime_name != "python":
        raise ConfigError(f"runtime {runtime_name!r} is not supported (python only)", file=project_file,
                          where="key runtime")
    main = raw.get("main", ".")
    if not isinstance(main, str):
        raise ConfigError("expected a path", file=project_file, where="key main")
    main_path = (directory / main).resolve()
    main_file = main_path / "__main__.py" if main_path.is_dir() else main_path
    if not main_file.is_file():
        raise ConfigError(f"program {main_file} not found", file=project_file, where="key main")
    config_dir = raw.get("stackConfigDir", ".")
    if not isinstance(config_dir, str):
        raise ConfigError("expected a path", file=project_file, where="key stackConfigDir")
    return PulumiProject(project_file, name, main_file, (directory / config_dir).resolve())


# --- configuration -----------------------------------------------------------------------------------

def _secure_placeholder(ciphertext: Any) -> str:
    """A stable stand-in for a ``secure:`` value: ciphertext cannot be decrypted offline."""
    digest = hashlib.sha256(str(ciphertext).encode()).hexdigest()[:24]
    return f"offline-placeholder-{digest}"


def _replace_secure(value: Any) -> tuple[Any, bool]:
    """Replace every ``{secure: ...}`` in a config value; return the value and whether any was found."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return _secure_placeholder(value["secure"]), True
        found = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], secret = _replace_secure(item)
            found = found or secret
        return out, found
    if isinstance(value, list):
        items = [_replace_secure(item) for item in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _wire_config_value(value: Any) -> str:
    """Config values as the CLI hands them to a program: strings, structured values as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


@dataclass
class StackConfig:
    values: dict[str, str] = field(default_factory=dict)  # namespaced key -> wire value
    parsed: dict[str, Any] = field(default_factory=dict)  # namespaced key -> YAML value (secrets replaced)
    secret_keys: set[str] = field(default_factory=set)
    source: Path | None = None

    def add(self, project: str, key: Any, value: Any, source: str | Path) -> None:
        if not isinstance(key, str) or not key or key.count(":") > 1:
            raise ConfigError("config keys are '<key>' or '<namespace>:<key>'", file=source, where=f"key {key!r}")
        full_key = key if ":" in key else f"{project}:{key}"
        plain, secret = _replace_secure(value)
        if value is None:
            raise ConfigError("has no value", file=source, where=f"key {full_key}")
        self.values[full_key] = _wire_config_value(plain)
        self.parsed[full_key] = plain
        if secret:
            self.secret_keys.add(full_key)
        else:
            self.secret_keys.discard(full_key)

    def masked(self) -> dict[str, Any]:
        return {k: (SECRET_MASK if k in self.secret_keys else v) for k, v in self.parsed.items()}


def load_stack_config(project: PulumiProject, stack: str, config_file: Path | None = None,
                      overrides: dict[str, Any] | None = None) -> StackConfig:
    """The stack's configuration: ``Pulumi.<stack>.yaml`` (or ``config_file``), then ``overrides``."""
    path = config_file if config_file is not None else project.stack_config_file(stack)
    config = StackConfig(source=path)
    if config_file is not None or path.exists():
        raw = _load_yaml_mapping(path, "stack configuration")
        block = raw.get("config", {})
        if block is None:
            block = {}
        if not isinstance(block, dict):
            raise ConfigError("expected a mapping of config keys", file=path, where="key config")
        for key, value in block.items():
            config.add(project.name, key, value, path)
    for key, value in (overrides or {}).items():
        config.add(project.name, key, value, "config override")
    return config


# --- mock engine -------------------------------------------------------------------------------------

def _unwrap_secrets(value: Any) -> tuple[Any, bool]:
    """Unwrap Pulumi's secret envelopes (as CrossGuard does); report whether any was found."""
    if isinstance(value, dict):
        if value.get(SPECIAL_SIG_KEY) == SPECIAL_SECRET_SIG:
            inner, _ = _unwrap_secrets(value.get("value"))
            return inner, True
        found = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], secret = _unwrap_secrets(item)
            found = found or secret
        return out, found
    if isinstance(value, list):
        items = [_unwrap_secrets(item) for item in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


class _RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that answer like a quiet cloud: state = inputs, ids derived from names."""

    def __init__(self) -> None:
        self._current = threading.local()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        self._current.args = args
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        # Lookups (get_network, get_image...) return their arguments plus an id, as a found object would.
        label = str(args.args.get("name") or args.token.rsplit(":", 1)[-1])
        return {"id": f"{label}-id", **dict(args.args)}, []

    def take_current(self) -> pulumi.runtime.MockResourceArgs | None:
        args = getattr(self._current, "args", None)
        self._current.args = None
        return args


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """A fresh monitor per run that also records each resource's parent and inputs."""

    def __init__(self, mocks: _RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks
        self.records: list[PlannedResource] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The URN the real engine gives: the parent's whole type chain, then the type and the name.

        Pulumi's MockMonitor keeps only the last type of the parent's chain, so a grandchild of a
        component (a security group rule under a group under a ZonedNetwork) got a URN no engine
        gives it; the parity test with ``pulumi preview`` found it. Children of the root stack
        carry no prefix, as in the engine.
        """
        if parent:
            parent_chain = parent.split("::")[2]
            if parent_chain != STACK_TYPE:
                type_ = f"{parent_chain}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:  # gRPC method name
        response = super().RegisterResource(request)
        if request.type == STACK_TYPE:
            return response
        args = self.recorder.take_current()
        inputs, secret_keys = {}, set()
        for key, value in (args.inputs if args is not None else {}).items():
            inputs[key], secret = _unwrap_secrets(value)
            if secret:
                secret_keys.add(key)
        parent = request.parent or None
        if parent is not None and parent.split("::")[2].split("$")[-1] == STACK_TYPE:
            parent = None
        resource = PlannedResource(
            urn=response.urn, type=request.type, name=request.name, parent=parent,
            custom=bool(request.custom), inputs=inputs, secret_keys=secret_keys,
            provider=request.provider or None,
        )
        with self._lock:
            self.records.append(resource)
        return response


def _empty_stack_trace() -> Any:
    return pulumi_resource.source_pb2.StackTrace()


@contextmanager
def _isolated_pulumi_runtime(program_dir: Path) -> Iterator[None]:
    """Save Pulumi's process-wide state and the import state, restore them afterwards."""
    # Not every SDK release has every attribute (base_providers_by_ref came after 3.260).
    saved_settings = {name: getattr(pulumi_settings.SETTINGS, name) for name in _SETTINGS_ATTRIBUTES
                      if hasattr(pulumi_settings.SETTINGS, name)}
    saved_root = pulumi_settings.ROOT.get()
    saved_config = pulumi_config.CONFIG.get()
    saved_secret_keys = pulumi_config._SECRET_KEYS.get()
    saved_modules = set(sys.modules)
    saved_stack_trace = pulumi_resource._get_stack_trace
    # The SDK extracts a full Python stack trace (reading source lines) for every resource, for the
    # engine's diagnostics; the mock monitor ignores it and it costs half of a large plan.
    pulumi_resource._get_stack_trace = _empty_stack_trace
    sys.path.insert(0, str(program_dir))
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = saved_stack_trace
        sys.path.remove(str(program_dir))
        # Forget the program's own modules so another program with a same-named module runs its own.
        for name in set(sys.modules) - saved_modules:
            module_file = getattr(sys.modules[name], "__file__", None) or ""
            if module_file and Path(module_file).resolve().is_relative_to(program_dir):
                del sys.modules[name]
        for name, value in saved_settings.items():
            setattr(pulumi_settings.SETTINGS, name, value)
        pulumi_settings.ROOT.set(saved_root)
        pulumi_config.CONFIG.set(saved_config)
        pulumi_config._SECRET_KEYS.set(saved_secret_keys)


def _program_location(exc: BaseException, program_dir: Path) -> str | None:
    """``file:line`` of the deepest frame inside the program, to point at the failing statement."""
    location = None
    for frame in traceback.extract_tb(exc.__traceback__):
        try:
            inside = Path(frame.filename).resolve().is_relative_to(program_dir)
        except OSError:
            inside = False
        if inside:
            location = f"line {frame.lineno}"
    return location


async def _resolve_outputs(exports: dict[str, Any]) -> dict[str, Any]:
    """Plain values of the stack exports; a secret export is masked, as ``pulumi stack output`` does."""
    resolved: dict[str, Any] = {}
    for name, value in exports.items():
        output = pulumi.Output.from_input(value)
        resolved[name] = SECRET_MASK if await output.is_secret() else await output.future()
    return resolved


def config_file_stack(config_file: Path, stack: str | None = None) -> str:
    """The stack a configuration file belongs to: ``<stack>`` of its name ``Pulumi.<stack>.yaml``, which
    an explicit ``stack`` must agree with; a file named otherwise needs the explicit stack. Planning a
    production file as another stack would apply that stack's waivers to production resources."""
    name = config_file.name
    named = name[len("Pulumi."):-len(".yaml")] if name.startswith("Pulumi.") and name.endswith(".yaml") else None
    if named is not None:
        try:
            check_stack_name(named)
        except ValueError as exc:
            raise ConfigError(f"the file name does not name a stack: {exc}", file=config_file) from None
    if stack is not None and named is not None and named != stack:
        raise ConfigError(f"this is the configuration of stack {named!r}, not of stack {stack!r}", file=config_file,
                          where="--stack")
    resolved = stack or named
    if resolved is None:
        raise ConfigError("cannot tell which stack this file configures: name it Pulumi.<stack>.yaml or pass "
                          "--stack", file=config_file)
    return resolved


def run_plan(stack: str | None = None, program_dir: Path | None = None, config_file: Path | None = None,
             config_overrides: dict[str, Any] | None = None) -> Plan:
    """Run the Pulumi program in ``program_dir`` (default: the project root) offline and return its plan.

    ``stack`` defaults to the ``<stack>`` of ``config_file`` named ``Pulumi.<stack>.yaml`` (which it must
    agree with), else ``dev``; a config file named otherwise needs an explicit ``stack``.
    Raises :class:`ConfigError` (one line: program or file, what failed) when the project, the
    configuration or the program itself fails.
    """
    project = load_project(program_dir)
    if config_file is not None:
        if not config_file.is_file():
            raise ConfigError("stack configuration not found", file=config_file)
        stack = config_file_stack(config_file, stack)
    elif stack is None:
        stack = DEFAULT_STACK
    config = load_stack_config(project, stack, config_file, config_overrides)

    mocks = _RecordingMocks()
    monitor = _RecordingMonitor(mocks)
    captured: dict[str, Any] = {}

    def program() -> None:
        runpy.run_path(str(project.main_file), run_name="__main__")
        captured["stack"] = pulumi_settings.get_root_resource()

    with _isolated_pulumi_runtime(project.program_dir):
        pulumi_settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=project.name, stack=stack, preview=False, monitor=monitor)
        pulumi_settings.SETTINGS.root_directory = str(project.file.parent)
        pulumi_settings.SETTINGS.outputs = set()
        # run_in_stack creates its own root Stack, as the real Python language host does.
        pulumi_settings.ROOT.set(None)
        pulumi_config.set_all_config(dict(config.values), sorted(config.secret_keys))
        token = _CURRENT_CONFIG_FILE.set(config.source)
        try:
            _sync_await(run_in_stack(program))
            root = captured.get("stack")
            raw_outputs = dict(getattr(root, "outputs", {}) or {})
            outputs = _sync_await(_resolve_outputs(raw_outputs))
        except SocleError:
            raise
        except Exception as exc:  # any failure of user code becomes one line
            message = " ".join(str(exc).split()) or type(exc).__name__
            where = _program_location(exc, project.program_dir)
            raise ConfigError(f"program failed: {type(exc).__name__}: {message}", file=project.main_file,
                              where=where) from None
        finally:
            _CURRENT_CONFIG_FILE.reset(token)

    plain_outputs, _ = _unwrap_secrets(outputs or {})
    resources = sorted(monitor.records, key=lambda r: r.urn)
    return Plan(project=project.name, stack=stack, resources=resources, outputs=plain_outputs,
                config=config.masked())
