"""IVR flows: menus are data (``ivr_flows/*.yaml``), parsed and validated once at start-up.

A flow file serves one ``entry`` (the first AGI argument the dialplan passes, e.g. ``hotline``) and holds named
nodes. A node plays its ``prompt``, waits ``timeout`` seconds for one key and maps it through ``options`` to an
action; after ``max_tries`` timeouts or wrong keys it takes its ``default`` action, which must end the menu (an
agent's queue, by convention). Prompt texts live in ``ivr_flows/prompts.yaml`` (id → language → text).

Everything is checked before the platform starts and every problem is reported at once (``FlowError``), each
naming its file, node and what is wrong: a caller must never discover a typo in a menu.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import yaml

from callcenter.config import PROJECT_ROOT
from callcenter.orders.models import WorkOrderKind
from callcenter.providers.models import ServiceType

DEFAULT_FLOWS_DIR = PROJECT_ROOT / "ivr_flows"
PROMPTS_FILE = "prompts.yaml"
RECORDED_DIR = "recorded"
LANGUAGES = ("zh-CN", "en")  # every prompt needs a text in each of them
DEFAULT_LANGUAGE = "zh-CN"
QUEUES = ("emergency", "hotline")  # the platform's Asterisk queues
DIGITS = "0123456789*#"
DEFAULT_QUEUE = "hotline"
# Prompt ids become file names (<lang>/<id>.wav) and Asterisk arguments: no spaces, dots or slashes.
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_NODE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class FlowError(ValueError):
    """The flows or prompts are invalid; ``problems`` lists every one, each naming its file and node."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid IVR flows:\n" + "\n".join(f"  - {problem}" for problem in self.problems))


# -- actions ------------------------------------------------------------------------------------------------
# Every action may carry a ``prompt``, played once the action is carried out (after an order or callback is
# recorded: the confirmation) and before the menu moves on or ends.


@dataclasses.dataclass(frozen=True, slots=True)
class QueueAction:
    """End the menu: the dialplan puts the caller in ``queue``."""

    type: ClassVar[str] = "queue"
    queue: str
    prompt: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class OrderAction:
    """Raise a work order of ``kind`` (``service`` goes into its details), then carry out ``then``."""

    type: ClassVar[str] = "order"
    kind: WorkOrderKind
    then: Action
    service: str | None = None
    title: str | None = None
    prompt: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CallbackAction:
    """Record a callback request (a consultation order with the caller's number) and end the menu."""

    type: ClassVar[str] = "callback"
    prompt: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class MenuAction:
    """Go to another node (its tries start afresh)."""

    type: ClassVar[str] = "menu"
    node: str
    prompt: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class RepeatAction:
    """Play the current node's prompt again; does not count as a try."""

    type: ClassVar[str] = "repeat"
    prompt: None = None


@dataclasses.dataclass(frozen=True, slots=True)
class HangupAction:
    """End the menu: the dialplan hangs up."""

    type: ClassVar[str] = "hangup"
    prompt: str | None = None


Action = QueueAction | OrderAction | CallbackAction | MenuAction | RepeatAction | HangupAction
TERMINAL = (QueueAction, CallbackAction, HangupAction)

_ACTION_KEYS: dict[str, frozenset[str]] = {
    "queue": frozenset({"action", "queue", "prompt"}),
    "order": frozenset({"action", "kind", "service", "title", "then", "prompt"}),
    "callback": frozenset({"action", "prompt"}),
    "menu": frozenset({"action", "node", "prompt"}),
    "repeat": frozenset({"action"}),
    "hangup": frozenset({"action", "prompt"}),
}
_THEN_TYPES = ("queue", "menu", "hangup")


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    id: str
    prompt: str
    options: Mapping[str, Action]
    timeout: float
    max_tries: int
    invalid_prompt: str | None
    timeout_prompt: str | None
    default: Action


@dataclasses.dataclass(frozen=True, slots=True)
class Flow:
    entry: str
    source: Path
    start: str
    nodes: Mapping[str, Node]
    welcome_known: str | None = None
    welcome_unknown: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FlowSet:
    directory: Path
    flows: Mapping[str, Flow]
    prompts: Mapping[str, Mapping[str, str]]  # prompt id → language → text

    def flow(self, entry: str) -> Flow | None:
        return self.flows.get(entry)

    @property
    def recorded_dir(self) -> Path:
        return self.directory / RECORDED_DIR


def action_chain(action: Action) -> Iterator[Action]:
    """The action and the ones it leads to directly (an order's ``then``)."""
    while True:
        yield action
        if not isinstance(action, OrderAction):
            return
        action = action.then


# -- loading ------------------------------------------------------------------------------------------------


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers keys given twice (PyYAML silently keeps the last one)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[Any] = []


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    result = _Mapping()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(None, None, f"unusable key {key!r}", key_node.start_mark)
        if key in result:
            result.duplicates.append(key)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problems.append(f"{path.name}: cannot be read as YAML: {error}")
        return None


def load_flows(directory: Path = DEFAULT_FLOWS_DIR) -> FlowSet:
    """Parse and validate every flow in ``directory``; raise one ``FlowError`` listing all problems."""
    problems: list[str] = []
    if not directory.is_dir():
        raise FlowError([f"{directory}: no such directory"])
    prompts = _load_prompts(directory / PROMPTS_FILE, problems)
    flows: dict[str, Flow] = {}
    files = sorted(path for path in directory.glob("*.yaml") if path.name != PROMPTS_FILE)
    if not files:
        problems.append(f"{directory}: no flow files (*.yaml besides {PROMPTS_FILE})")
    for path in files:
        flow = _FlowParser(path, prompts, problems).parse()
        if flow is None:
            continue
        if flow.entry in flows:
            problems.append(f"{path.name}: entry {flow.entry!r} is already served by {flows[flow.entry].source.name}")
            continue
        flows[flow.entry] = flow
    if problems:
        raise FlowError(problems)
    return FlowSet(directory=directory, flows=MappingProxyType(flows), prompts=MappingProxyType(prompts))


def _load_prompts(path: Path, problems: list[str]) -> dict[str, Mapping[str, str]]:
    if not path.exists():
        problems.append(f"{path.name}: missing (prompt id → {{{', '.join(LANGUAGES)}}} texts)")
        return {}
    raw = _read_yaml(path, problems)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: expected a mapping of prompt id → texts")
        return {}
    prompts: dict[str, Mapping[str, str]] = {}
    for duplicate in getattr(raw, "duplicates", ()):
        problems.append(f"{path.name}: prompt {duplicate!r} is defined twice")
    for prompt_id, texts in raw.items():
        where = f"{path.name}: prompt {prompt_id!r}"
        if not isinstance(prompt_id, str) or not _ID.match(prompt_id):
            problems.append(f"{where}: id must be lower-case letters, digits and '-'")
            continue
        if not isinstance(texts, dict):
            problems.append(f"{where}: expected a mapping of language → text")
            continue
        for duplicate in getattr(texts, "duplicates", ()):
            problems.append(f"{where}: language {duplicate!r} given twice")
        for language in texts:
            if language not in LANGUAGES:
                problems.append(f"{where}: unknown language {language!r} (one of {', '.join(LANGUAGES)})")
        for language in LANGUAGES:
            text = texts.get(language)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: missing prompt text in required language {language}")
        prompts[prompt_id] = MappingProxyType(
            {language: text.strip() for language, text in texts.items() if language in LANGUAGES and
             isinstance(text, str)}
        )
    return prompts


class _FlowParser:
    _FLOW_KEYS = frozenset({"entry", "description", "start", "welcome", "defaults", "nodes"})
    _NODE_SETTINGS = frozenset({"timeout", "max_tries", "invalid_prompt", "timeout_prompt", "default"})
    _NODE_KEYS = _NODE_SETTINGS | {"prompt", "options", "description"}

    def __init__(self, path: Path, prompts: Mapping[str, Mapping[str, str]], problems: list[str]) -> None:
        self.path = path
        self.prompts = prompts
        self.problems = problems
        self.node_refs: list[tuple[str, str]] = []  # (where, node id) to check once every node is known

    def problem(self, where: str | None, message: str) -> None:
        self.problems.append(f"{self.path.name}: {where}: {message}" if where else f"{self.path.name}: {message}")

    def parse(self) -> Flow | None:
        before = len(self.problems)
        raw = _read_yaml(self.path, self.problems)
        if raw is None:
            return None
        if not isinstance(raw, dict):
            self.problem(None, "expected a mapping with entry, start, nodes")
            return None
        self.check_keys(raw, self._FLOW_KEYS, None)
        entry = raw.get("entry")
        if not isinstance(entry, str) or not _NODE_ID.match(entry):
            self.problem(None, "'entry' must name the entry this flow serves (e.g. hotline)")
            entry = ""
        defaults = raw.get("defaults") or _Mapping()
        if not isinstance(defaults, dict):
            self.problem("defaults", "expected a mapping")
            defaults = {}
        else:
            self.check_keys(defaults, self._NODE_SETTINGS, "defaults")
        welcome = raw.get("welcome") or {}
        welcome_known = welcome_unknown = None
        if not isinstance(welcome, dict):
            self.problem("welcome", "expected a mapping with 'known' and/or 'unknown' prompt ids")
        else:
            self.check_keys(welcome, frozenset({"known", "unknown"}), "welcome")
            welcome_known = self.prompt_ref(welcome.get("known"), "welcome", "known")
            welcome_unknown = self.prompt_ref(welcome.get("unknown"), "welcome", "unknown")
        nodes: dict[str, Node] = {}
        raw_nodes = raw.get("nodes")
        if not isinstance(raw_nodes, dict) or not raw_nodes:
            self.problem(None, "'nodes' must be a non-empty mapping of node id → node")
            raw_nodes = {}
        else:
            self.check_keys(raw_nodes, None, "nodes")
        for node_id, raw_node in raw_nodes.items():
            if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
                self.problem(f"node {node_id!r}", "id must be lower-case letters, digits, '-' and '_'")
                continue
            nodes[node_id] = self.node(node_id, raw_node, defaults)
        start = raw.get("start")
        if not isinstance(start, str) or not start:
            self.problem(None, "missing start node ('start: <node id>')")
        elif start not in nodes:
            self.problem(None, f"start node {start!r} does not exist")
        for where, target in self.node_refs:
            if target not in nodes:
                self.problem(where, f"unknown node {target!r}")
        if isinstance(start, str) and start in nodes:
            for node_id in sorted(set(nodes) - _reachable(nodes, start)):
                self.problem(f"node {node_id!r}", f"unreachable from the start node {start!r}")
        if len(self.problems) > before:
            return None
        return Flow(entry=entry, source=self.path, start=start, nodes=MappingProxyType(nodes),
                    welcome_known=welcome_known, welcome_unknown=welcome_unknown)

    def check_keys(self, mapping: _Mapping, allowed: frozenset[str] | None, where: str | None) -> None:
        for duplicate in getattr(mapping, "duplicates", ()):
            self.problem(where, f"{duplicate!r} is given twice")
        if allowed is not None:
            for key in mapping:
                if key not in allowed:
                    self.problem(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")

    def prompt_ref(self, value: object, where: str, key: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or value not in self.prompts:
            self.problem(where, f"{key}: unknown prompt id {value!r} (not in {PROMPTS_FILE})")
            return None
        return value

    def node(self, node_id: str, raw: object, defaults: Mapping[str, Any]) -> Node:
        where = f"node {node_id!r}"
        if not isinstance(raw, dict):
            self.problem(where, "expected a mapping with prompt and options")
            raw = {}
        else:
            self.check_keys(raw, self._NODE_KEYS, where)

        def setting(key: str) -> Any:
            return raw[key] if key in raw else defaults.get(key)

        prompt = self.prompt_ref(raw.get("prompt"), where, "prompt")
        if raw.get("prompt") is None:
            self.problem(where, "missing prompt")
        timeout = setting("timeout")
        if timeout is None:
            timeout = 5
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 60:
            self.problem(where, f"timeout {timeout!r}: seconds between 1 and 60")
            timeout = 5
        max_tries = setting("max_tries")
        if max_tries is None:
            max_tries = 3
        if isinstance(max_tries, bool) or not isinstance(max_tries, int) or not 1 <= max_tries <= 9:
            self.problem(where, f"max_tries {max_tries!r}: a whole number between 1 and 9")
            max_tries = 3
        options: dict[str, Action] = {}
        raw_options = raw.get("options")
        if not isinstance(raw_options, dict) or not raw_options:
            self.problem(where, "'options' must map digits to actions")
            raw_options = _Mapping()
        for duplicate in getattr(raw_options, "duplicates", ()):
            self.problem(where, f"duplicate digit {str(duplicate)!r}")
        for key, raw_action in raw_options.items():
            digit = str(key) if isinstance(key, int) and not isinstance(key, bool) else key
            if not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS:
                self.problem(where, f"digit {key!r} is not one of 0-9, * or # (quote * and # in YAML)")
                continue
            if digit in options:
                self.problem(where, f"duplicate digit {digit!r}")
                continue
            options[digit] = self.action(raw_action, f"{where}: option {digit!r}")
        raw_default = setting("default")
        if raw_default is None:
            default: Action = QueueAction(DEFAULT_QUEUE)
        else:
            default = self.action(raw_default, f"{where}: default")
            if not isinstance(list(action_chain(default))[-1], TERMINAL):
                self.problem(where, "the default after max tries must end the menu (queue, callback or hangup)")
        return Node(
            id=node_id, prompt=prompt or "", options=MappingProxyType(options), timeout=float(timeout),
            max_tries=max_tries, invalid_prompt=self.prompt_ref(setting("invalid_prompt"), where, "invalid_prompt"),
            timeout_prompt=self.prompt_ref(setting("timeout_prompt"), where, "timeout_prompt"), default=default,
        )

    def action(self, raw: object, where: str, *, allowed: Sequence[str] | None = None) -> Action:
        placeholder = HangupAction()
        if not isinstance(raw, dict) or "action" not in raw:
            self.problem(where, "expected a mapping with an 'action' key")
            return placeholder
        kind = raw["action"]
        if kind not in _ACTION_KEYS:
            self.problem(where, f"unknown action {kind!r} (one of {', '.join(_ACTION_KEYS)})")
            return placeholder
        if allowed is not None and kind not in allowed:
            self.problem(where, f"action {kind!r} is not allowed here (one of {', '.join(allowed)})")
            return placeholder
        self.check_keys(raw, _ACTION_KEYS[kind], where)
        prompt = self.prompt_ref(raw.get("prompt"), where, "prompt")
        if kind == "queue":
            queue = raw.get("queue")
            if queue not in QUEUES:
                self.problem(where, f"unknown queue {queue!r} (one of {', '.join(QUEUES)})")
            return QueueAction(str(queue), prompt)
        if kind == "menu":
            node = raw.get("node")
            if not isinstance(node, str):
                self.problem(where, "menu needs 'node: <node id>'")
            else:
                self.node_refs.append((where, node))
            return MenuAction(str(node), prompt)
        if kind == "order":
            raw_kind = raw.get("kind")
            try:
                order_kind = WorkOrderKind(raw_kind)
            except ValueError:
                known = ", ".join(kind.value for kind in WorkOrderKind)
                self.problem(where, f"unknown order kind {raw_kind!r} (one of {known})")
                order_kind = WorkOrderKind.CONSULTATION
            service = raw.get("service")
            if service is not None and service not in set(ServiceType):
                known = ", ".join(s.value for s in ServiceType)
                self.problem(where, f"unknown service {service!r} (one of {known})")
                service = None
            title = raw.get("title")
            if title is not None and not isinstance(title, str):
                self.problem(where, "title must be text")
                title = None
            if "then" not in raw:
                self.problem(where, "order needs 'then: <action>' (e.g. the hotline queue)")
                then: Action = placeholder
            else:
                then = self.action(raw["then"], f"{where}: then", allowed=_THEN_TYPES)
            return OrderAction(order_kind, then, service, title, prompt)
        if kind == "callback":
            return CallbackAction(prompt)
        if kind == "repeat":
            return RepeatAction()
        return HangupAction(prompt)


def _reachable(nodes: Mapping[str, Node], start: str) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        node = nodes[todo.pop()]
        for action in [*node.options.values(), node.default]:
            for step in action_chain(action):
                if isinstance(step, MenuAction) and step.node in nodes and step.node not in seen:
                    seen.add(step.node)
                    todo.append(step.node)
    return seen
