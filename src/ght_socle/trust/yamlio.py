"""The one way the project reads YAML, and the one way it writes YAML that Ansible will read.

Reading (:func:`load_yaml`): a size limit, an alias limit (a "billion laughs" document is refused
before it is expanded), UTF-8 only (an encoding error is bad input, not a traceback), no arbitrary
objects (a ``SafeLoader``), and no implicit timestamps: ``2027-02-30`` stays the string it is and
reaches the schema that owns the key, which rejects it naming the file and the key. Ansible's
``!unsafe`` tag is read as the plain string it marks, so generated inventories read back.

Writing (:func:`dump_ansible_yaml`): every string that YAML reads as a string is emitted with
``!unsafe``, so Ansible never evaluates a value of ours as a Jinja template (a stack output is
untrusted data); the others (``'22'``, ``'true'``) are quoted strings, whose type Ansible keeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ght_socle.errors import ConfigError

MAX_YAML_BYTES = 4 * 1024 * 1024  # the largest catalog or stack file is a few tens of kB
MAX_ALIASES = 100                 # anchors are a convenience; a document does not need hundreds
MAX_DEPTH = 64                    # nesting deeper than this is an attack, not a configuration
# Aliases share one object in memory, so a few dozen of them can stand for billions of values that
# explode later (a JSON dump, a copy): the loaded document is walked once, shared parts counted each
# time they are reached, and refused past this many values.
MAX_EXPANDED_VALUES = 200_000


class LimitedLoader(yaml.SafeLoader):
    """SafeLoader with bounded alias use and depth, and without implicit timestamps."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, f"more than {MAX_ALIASES} aliases",
                                                  event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


LimitedLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _unsafe_string(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    raise yaml.constructor.ConstructorError(None, None, "!unsafe marks strings only", node.start_mark)


LimitedLoader.add_constructor("!unsafe", _unsafe_string)


def _problem(exc: yaml.YAMLError) -> tuple[str, str | None]:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
    return f"broken YAML: {problem}", where


def parse_yaml(text: str, *, source: str | Path = "YAML document") -> Any:
    """Parse a YAML document already in memory, with the same limits and errors as :func:`load_yaml`."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB", file=source)
    try:
        data = yaml.load(text, Loader=LimitedLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as exc:
        message, where = _problem(exc)
        raise ConfigError(message, file=source, where=where) from None
    except RecursionError:
        raise ConfigError(f"broken YAML: nested deeper than {MAX_DEPTH} levels", file=source) from None
    if _expanded_size(data) > MAX_EXPANDED_VALUES:
        raise ConfigError(f"expands to more than {MAX_EXPANDED_VALUES} values (aliases repeated in aliases)",
                          file=source)
    return data


def _expanded_size(data: Any) -> int:
    """How many values ``data`` holds once every alias is expanded (stops counting past the limit)."""
    count = 0
    stack = [data]
    while stack and count <= MAX_EXPANDED_VALUES:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def read_text(path: Path, *, what: str = "file") -> str:
    """A UTF-8 text file, with one-line errors for a missing, unreadable, oversized or non-UTF-8 file."""
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(f"larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB", file=path)
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", file=path) from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a directory, not a file", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError("not UTF-8 text", file=path, where=f"line {line}") from None


def load_yaml(path: Path, *, what: str = "file") -> Any:
    """Read and parse one YAML file (see the module docstring for the limits)."""
    return parse_yaml(read_text(path, what=what), source=path)


class _AnsibleDumper(yaml.SafeDumper):
    """SafeDumper that tags string values ``!unsafe``; mapping keys stay plain (names we checked)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # a shared list is written twice, not as an anchor Ansible users would trip on


STR_TAG = "tag:yaml.org,2002:str"


def _unsafe_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # Ansible re-resolves an !unsafe scalar as if it were plain, quotes ignored: '22' would become an
    # integer and '*' breaks the inventory. A string that does not resolve as a string (a number, a
    # boolean, null, a date, '*') cannot hold a template either, so it is written as a quoted string.
    if dumper.resolve(yaml.ScalarNode, value, (True, False)) != STR_TAG:
        return dumper.represent_scalar(STR_TAG, value, style="'")
    return dumper.represent_scalar("!unsafe", value)


def _plain_keys(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.MappingNode:
    pairs = [(yaml.SafeDumper.represent_str(dumper, key) if isinstance(key, str) else dumper.represent_data(key),
              dumper.represent_data(value)) for key, value in data.items()]
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=not pairs)


_AnsibleDumper.add_representer(str, _unsafe_representer)
_AnsibleDumper.add_representer(dict, _plain_keys)


def dump_ansible_yaml(data: Any) -> str:
    """YAML for Ansible: every string value is ``!unsafe`` (never templated); keys stay plain."""
    return yaml.dump(data, Dumper=_AnsibleDumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=4096)
