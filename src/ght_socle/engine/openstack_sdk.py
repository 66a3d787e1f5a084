"""What the installed ``pulumi_openstack`` SDK sends to its provider plugin, read from its source.

The project's OpenStack plugin must serve exactly the type tokens and property names this SDK
uses, or a program written against it fails at run time. The SDK is generated code of a regular
shape, so its surface is read with :mod:`ast` (nothing is imported, nothing is run):

* a resource is a class decorated ``@pulumi.type_token("openstack:<module>/<name>:<Name>")`` that
  derives from ``pulumi.CustomResource``; its ``@pulumi.getter`` properties are its outputs, those
  of the ``<Name>Args`` class beside it its inputs;
* a function calls ``pulumi.runtime.invoke("<token>", __args__, typ=<Result>)``; the keys it sets
  in ``__args__`` are its arguments, the getters of ``<Result>`` its results;
* an object type is a class of a module's ``_inputs.py`` (``<Type>Args``) or ``outputs.py``;
* the provider's settings are the getters of ``ProviderArgs``; its methods call
  ``pulumi.runtime.call("<token>", ...)``.

A property name is the getter's ``name=`` (the wire name, camelCase), else the Python name; a
property is a list when its annotation holds ``Sequence[``. The build hands the token list to the
Go mapping (``sdk-tokens.json``); the engine tests compare the whole surface with the plugin's schema.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ght_socle.errors import ToolMissingError

SDK_PACKAGE = "pulumi_openstack"
ROOT_MODULE = "index"  # the token module of the package's top level


@dataclass(frozen=True)
class Shape:
    """Property wire names, each with whether it is a list (``Sequence[...]``)."""

    lists: dict[str, bool]

    @property
    def names(self) -> set[str]:
        return set(self.lists)


@dataclass(frozen=True)
class SdkResource:
    token: str
    python_module: str  # e.g. "networking"
    class_name: str
    inputs: Shape
    outputs: Shape


@dataclass(frozen=True)
class SdkFunction:
    token: str
    python_module: str
    function_name: str  # e.g. "get_image"
    arguments: set[str]
    results: Shape


@dataclass
class SdkSurface:
    version: str
    resources: dict[str, SdkResource] = field(default_factory=dict)
    functions: dict[str, SdkFunction] = field(default_factory=dict)
    # (token module, type name) -> shape of the object type, from _inputs.py (…Args) or outputs.py
    object_types: dict[tuple[str, str], list[Shape]] = field(default_factory=dict)
    provider_settings: Shape = field(default_factory=lambda: Shape({}))
    methods: set[str] = field(default_factory=set)  # provider methods, e.g. pulumi:providers:openstack/terraformConfig

    def tokens_json(self) -> str:
        """The token list the Go mapping reads (sdk-tokens.json)."""
        return json.dumps({"version": self.version, "resources": sorted(self.resources),
                           "functions": sorted(self.functions)}, indent=1) + "\n"

    def resource_of(self, python_module: str, class_name: str) -> SdkResource | None:
        return next((r for r in self.resources.values()
                     if r.python_module == python_module and r.class_name == class_name), None)

    def function_of(self, python_module: str, function_name: str) -> SdkFunction | None:
        name = function_name.removesuffix("_output")
        return next((f for f in self.functions.values()
                     if f.python_module == python_module and f.function_name == name), None)


def sdk_dir() -> Path:
    spec = importlib.util.find_spec(SDK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissingError(f"the {SDK_PACKAGE} SDK is not installed in this Python ({SDK_PACKAGE} "
                               "comes with the project: make venv)")
    return Path(next(iter(spec.submodule_search_locations)))


def _call_name(node: ast.expr) -> str:
    """``pulumi.getter`` for ``@pulumi.getter`` and ``@pulumi.getter(name=...)``."""
    target = node.func if isinstance(node, ast.Call) else node
    return ast.unparse(target)


def _string_argument(node: ast.expr) -> str | None:
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        value = node.args[0].value
        return value if isinstance(value, str) else None
    return None


def _getters(cls: ast.ClassDef) -> Shape:
    lists: dict[str, bool] = {}
    for item in cls.body:
        if not isinstance(item, ast.FunctionDef):
            continue
        for decorator in item.decorator_list:
            if _call_name(decorator) != "pulumi.getter":
                continue
            wire = item.name
            if isinstance(decorator, ast.Call):
                wire = next((str(k.value.value) for k in decorator.keywords
                             if k.arg == "name" and isinstance(k.value, ast.Constant)), wire)
            annotation = ast.unparse(item.returns) if item.returns is not None else ""
            lists[wire] = "Sequence[" in annotation
    return Shape(lists)


def _invoke(function: ast.FunctionDef) -> tuple[str, str | None] | None:
    """The token and result class of the ``pulumi.runtime.invoke`` a function makes, if any."""
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pulumi.runtime.invoke":
            token = _string_argument(node)
            result = next((ast.unparse(k.value) for k in node.keywords if k.arg == "typ"), None)
            if token is not None:
                return token, result
    return None


def _calls(tree: ast.Module) -> set[str]:
    """Tokens of the ``pulumi.runtime.call`` a module makes (methods of resources and of the provider)."""
    return {token for node in ast.walk(tree)
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pulumi.runtime.call"
            and (token := _string_argument(node)) is not None}


def _arguments(function: ast.FunctionDef) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "__args__" \
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            keys.add(node.slice.value)
    return keys


def _python_module(path: Path, root: Path) -> str:
    relative = path.relative_to(root)
    return relative.parts[0] if len(relative.parts) > 1 else ROOT_MODULE


def read_surface(root: Path | None = None) -> SdkSurface:
    """The surface of the SDK installed at ``root`` (default: the one this Python imports)."""
    root = root or sdk_dir()
    version = json.loads((root / "pulumi-plugin.json").read_text())["version"]
    surface = SdkSurface(version=version)
    for path in sorted(root.rglob("*.py")):
        module = _python_module(path, root)
        tree = ast.parse(path.read_text(), filename=str(path))
        classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
        surface.methods |= _calls(tree)
        for name, cls in classes.items():
            if path.name in ("_inputs.py", "outputs.py"):
                type_name = name.removesuffix("Args") if path.name == "_inputs.py" else name
                surface.object_types.setdefault((module, type_name), []).append(_getters(cls))
                continue
            if name == "ProviderArgs":
                surface.provider_settings = _getters(cls)
            token = next((_string_argument(d) for d in cls.decorator_list
                          if _call_name(d) == "pulumi.type_token"), None)
            if token and any(ast.unparse(base) == "pulumi.CustomResource" for base in cls.bases):
                arguments = classes.get(f"{name}Args")
                surface.resources[token] = SdkResource(
                    token=token, python_module=module, class_name=name, outputs=_getters(cls),
                    inputs=_getters(arguments) if arguments is not None else Shape({}))
        for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
            found = _invoke(function)
            if found is None or function.name.endswith("_output"):
                continue
            token, result = found
            result_class = classes.get(result or "")
            surface.functions[token] = SdkFunction(
                token=token, python_module=module, function_name=function.name,
                arguments=_arguments(function),
                results=_getters(result_class) if result_class is not None else Shape({}))
    return surface


_TYPE_TOKEN = re.compile(r'@pulumi\.type_token\("([^"]+)"\)')
_SECRET_INPUT = re.compile(r'__props__\.__dict__\["(\w+)"\] = None if \w+ is None else pulumi\.Output\.secret\(')


@functools.cache
def secret_inputs() -> dict[str, frozenset[str]]:
    """Resource type token -> wire names of the inputs the SDK always sends as secrets.

    The generated SDK wraps the inputs the provider's schema marks secret (an instance's ``adminPass``,
    a user's ``password``...) in ``pulumi.Output.secret`` whatever the program passes, so the engine
    encrypts them in the state. The CrossGuard analyzer hands policies unwrapped values: this is how
    the pack still knows those inputs are secrets, as the offline plan does. Read from the source
    text (a few of the SDK's files hold such inputs).
    """
    found: dict[str, frozenset[str]] = {}
    for path in sorted(sdk_dir().rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if "pulumi.Output.secret(" not in text:
            continue
        tokens = _TYPE_TOKEN.findall(text)
        names = {_wire_name(name) for name in _SECRET_INPUT.findall(text)}
        if len(tokens) == 1 and names:
            found[tokens[0]] = frozenset(names)
    return found


def _wire_name(python_name: str) -> str:
    head, *rest = python_name.split("_")
    return head + "".join(word.capitalize() for word in rest)
