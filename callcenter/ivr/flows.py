"""IVR flows: menus are data (``ivr_flows/*.yaml``), parsed and validated once at start-up.

A flow file serves one ``entry`` (the first AGI argument the dialplan passes, e.g. ``hotline``) and holds named
nodes. A node plays its ``prompt``, waits ``timeout`` seconds for one key and maps it through ``options`` to an
action; after ``max_tries`` timeouts or wrong keys it takes its ``default`` action, which must end the menu (an
agent's queue, by convention). Prompt texts live in ``ivr_flows/prompts.yaml`` (id → language → text).

The YAML is validated by the pydantic dataclasses below (one per action, a union discriminated on ``action``);
the checks that span nodes (the start node, menu targets, reachability) are the flow's model validator.
Everything is checked before the platform starts and every problem is reported at once (``FlowError``), each
naming its file, node and what is wrong: a caller must never discover a typo in a menu.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass as plain_dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NoReturn

import yaml
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs, ErrorDetails, InitErrorDetails, PydanticCustomError

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
_KEY = "[key]"  # pydantic's location marker for a mapping key that failed (rather than its value)


class FlowError(ValueError):
    """The flows or prompts are invalid; ``problems`` lists every one, each naming its file and node."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid IVR flows:\n" + "\n".join(f"  - {problem}" for problem in self.problems))


# -- validation helpers -------------------------------------------------------------------------------------
# A validator that finds several problems raises them together as one ValidationError; pydantic prefixes each
# with the validator's place, so every problem keeps its own file → node → field location.


def _problem(loc: tuple[str | int, ...], kind: str, message: str, value: object = None) -> InitErrorDetails:
    # Without a context pydantic takes the message as it is, braces in a quoted value included.
    return {"type": PydanticCustomError(kind, message), "loc": loc, "input": value}


def _raise(problems: Sequence[InitErrorDetails]) -> NoReturn:
    raise ValidationError.from_exception_data("IVR flow", list(problems))


def _reraisable(invalid: ValidationError) -> list[InitErrorDetails]:
    return [_problem(error["loc"], error["type"], error["msg"], error["input"]) for error in invalid.errors()]


def _validate_adding(handler: Callable[[Any], Any], data: object, problems: list[InitErrorDetails]) -> Any:
    """``handler(data)``, reporting its own problems and ``problems`` together."""
    try:
        result = handler(data)
    except ValidationError as invalid:
        _raise([*_reraisable(invalid), *problems])
    if problems:
        _raise(problems)
    return result


def _given_twice(data: object, label: str, same_key: Callable[[object], object] = lambda key: key,
                 ) -> list[InitErrorDetails]:
    """Keys the YAML gives twice (PyYAML silently keeps the last one), also after ``same_key`` (``9`` and ``"9"``)."""
    if not isinstance(data, dict):
        return []
    twice = list(getattr(data, "duplicates", ()))
    seen: set[object] = set()
    for key in data:
        normal = same_key(key)
        if normal in seen:
            twice.append(normal)
        seen.add(normal)
    return [_problem((str(key), _KEY), "duplicate_key", f"{label}{key!r} is given twice", key) for key in twice]


def _one_of(what: str, choices: Collection[str]) -> BeforeValidator:
    def check(value: object) -> object:
        if not isinstance(value, str) or value not in choices:
            raise PydanticCustomError("unknown_choice", f"unknown {what} {value!r} (one of {', '.join(choices)})")
        return value

    return BeforeValidator(check)


def _number_between(low: int, high: int, what: str, kinds: tuple[type, ...]) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:  # type: ignore[operator]
            raise PydanticCustomError("out_of_range", f"{value!r} is not {what} between {low} and {high}")
        return value

    return BeforeValidator(check)


def _identifier(pattern: re.Pattern[str], message: str) -> BeforeValidator:
    """``message`` is formatted with the value (``{value!r}``)."""

    def check(value: object) -> object:
        if not isinstance(value, str) or not pattern.match(value):
            raise PydanticCustomError("bad_id", message.format(value=value))
        return value

    return BeforeValidator(check)


def _known_prompt(prompt_id: str, info: ValidationInfo) -> str:
    # Without a context (an action built in code) there is no prompt list to check against.
    known: Collection[str] | None = (info.context or {}).get("prompt_ids")
    if known is not None and prompt_id not in known:
        raise PydanticCustomError("unknown_prompt", f"unknown prompt id {prompt_id!r} (not in {PROMPTS_FILE})")
    return prompt_id


def _digit(key: object) -> object:
    """YAML reads an unquoted ``1`` as a number; the caller presses the character."""
    return str(key) if isinstance(key, int) and not isinstance(key, bool) else key


def _check_digit(key: object) -> str:
    digit = _digit(key)
    if not isinstance(digit, str) or len(digit) != 1 or digit not in DIGITS:
        raise PydanticCustomError("bad_digit", f"digit {key!r} is not one of 0-9, * or # (quote * and # in YAML)")
    return digit


def _mapping(label: str, *, empty: str | None = None, same_key: Callable[[object], object] = lambda key: key,
             ) -> WrapValidator:
    """A read-only mapping whose keys are each given once (and, with ``empty``, at least one)."""

    def validate(data: object, handler: ValidatorFunctionWrapHandler) -> Mapping[Any, Any]:
        problems = _given_twice(data, label, same_key)
        if empty is not None and isinstance(data, dict) and not data:
            problems.append(_problem((), "empty", empty, data))
        return MappingProxyType(_validate_adding(handler, data, problems))

    return WrapValidator(validate)


PromptRef = Annotated[str, AfterValidator(_known_prompt)]
Language = Annotated[str, _one_of("language", LANGUAGES)]
Digit = Annotated[str, BeforeValidator(_check_digit)]
NodeId = Annotated[str, _identifier(_NODE_ID, "node {value!r}: id must be lower-case letters, digits, '-' and '_'")]
PromptId = Annotated[str, _identifier(_ID, "prompt {value!r}: id must be lower-case letters, digits and '-'")]
EntryName = Annotated[str, _identifier(_NODE_ID, "must name the entry this flow serves (e.g. hotline) in lower-case "
                                                 "letters, digits, '-' and '_', not {value!r}")]
Seconds = Annotated[float, _number_between(1, 60, "a number of seconds", (int, float))]
Tries = Annotated[int, _number_between(1, 9, "a whole number", (int,))]
ACTION_TYPES = ("queue", "order", "callback", "menu", "repeat", "hangup")
_THEN_TYPES = ("queue", "menu", "hangup")
_YAML = ConfigDict(extra="forbid")


# No slots: a slotted dataclass is a new class, and the inherited validator would see the old one's (no) fields.
@dataclass(frozen=True, config=_YAML)
class _YamlMapping:
    """Base of every model read from YAML: keys given twice and unknown keys are named, with the allowed ones."""

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys_once(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(data, ArgsKwargs):  # built in code, not read from a file
            return handler(data)
        problems = _given_twice(data, "")
        try:
            result = handler(data)
        except ValidationError as invalid:
            allowed = ", ".join(sorted(field.alias or name for name, field in cls.__pydantic_fields__.items()
                                       if field.init is not False))
            for error in _reraisable(invalid):
                key = error["loc"][0] if len(error["loc"]) == 1 else None
                if error["type"].type == "unexpected_keyword_argument" and key is not None:  # type: ignore[union-attr]
                    error = _problem((key, _KEY), "unknown_key", f"unknown key {key!r} (allowed: {allowed})", key)
                problems.append(error)
        if problems:
            _raise(problems)
        return result


# -- actions ------------------------------------------------------------------------------------------------
# Every action may carry a ``prompt``, played once the action is carried out (after an order or callback is
# recorded: the confirmation) and before the menu moves on or ends. ``type`` is the YAML's ``action`` key.


@dataclass(frozen=True, config=_YAML)
class QueueAction(_YamlMapping):
    """End the menu: the dialplan puts the caller in ``queue``."""

    queue: Annotated[str, _one_of("queue", QUEUES)]
    prompt: PromptRef | None = None
    type: Literal["queue"] = Field("queue", alias="action", kw_only=True)


@dataclass(frozen=True, config=_YAML)
class CallbackAction(_YamlMapping):
    """Record a callback request (a consultation order with the caller's number) and end the menu."""

    prompt: PromptRef | None = None
    type: Literal["callback"] = Field("callback", alias="action", kw_only=True)


@dataclass(frozen=True, config=_YAML)
class MenuAction(_YamlMapping):
    """Go to another node (its tries start afresh)."""

    node: str
    prompt: PromptRef | None = None
    type: Literal["menu"] = Field("menu", alias="action", kw_only=True)


@dataclass(frozen=True, config=_YAML)
class RepeatAction(_YamlMapping):
    """Play the current node's prompt again; does not count as a try."""

    prompt: None = Field(None, init=False)  # what is repeated is the node's own prompt
    type: Literal["repeat"] = Field("repeat", alias="action", kw_only=True)


@dataclass(frozen=True, config=_YAML)
class HangupAction(_YamlMapping):
    """End the menu: the dialplan hangs up."""

    prompt: PromptRef | None = None
    type: Literal["hangup"] = Field("hangup", alias="action", kw_only=True)


def _action_type(allowed: Sequence[str]) -> BeforeValidator:
    """Name a missing, unknown or here-forbidden ``action`` (pydantic's tag errors do not say which is allowed)."""

    def check(data: object) -> object:
        if isinstance(data, Action):  # built in code (an order's ``then``)
            return data
        if not isinstance(data, dict) or "action" not in data:
            raise PydanticCustomError("no_action", "expected a mapping with an 'action' key")
        kind = data["action"]
        if kind not in ACTION_TYPES:
            message = f"unknown action {kind!r} (one of {', '.join(ACTION_TYPES)})"
        elif kind not in allowed:
            message = f"action {kind!r} is not allowed here (one of {', '.join(allowed)})"
        else:
            return data
        raise PydanticCustomError("unknown_choice", message)

    return BeforeValidator(check)


ThenAction = Annotated[QueueAction | MenuAction | HangupAction, Discriminator("type"), _action_type(_THEN_TYPES)]


@dataclass(frozen=True, config=_YAML)
class OrderAction(_YamlMapping):
    """Raise a work order of ``kind`` (``service`` goes into its details), then carry out ``then``."""

    kind: Annotated[WorkOrderKind, _one_of("order kind", [kind.value for kind in WorkOrderKind])]
    then: ThenAction
    service: Annotated[str, _one_of("service", [service.value for service in ServiceType])] | None = None
    title: str | None = None
    prompt: PromptRef | None = None
    type: Literal["order"] = Field("order", alias="action", kw_only=True)


Action = QueueAction | OrderAction | CallbackAction | MenuAction | RepeatAction | HangupAction
TERMINAL = (QueueAction, CallbackAction, HangupAction)
AnyAction = Annotated[Action, Discriminator("type"), _action_type(ACTION_TYPES)]
_ACTION = TypeAdapter[Action](AnyAction)


def action_chain(action: Action) -> Iterator[Action]:
    """The action and the ones it leads to directly (an order's ``then``)."""
    while True:
        yield action
        if not isinstance(action, OrderAction):
            return
        action = action.then


def _ends_the_menu(action: Action) -> Action:
    # A default that repeats or moves to a menu would keep a silent caller in the menu for ever.
    if not isinstance(list(action_chain(action))[-1], TERMINAL):
        raise PydanticCustomError("default_loops", "must end the menu (queue, callback or hangup) after max tries")
    return action


MenuEnd = Annotated[AnyAction, AfterValidator(_ends_the_menu)]


# -- nodes and flows ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, config=_YAML)
class NodeSettings(_YamlMapping):
    """A flow's ``defaults``: any node setting, used by every node that does not give its own."""

    timeout: Seconds | None = None
    max_tries: Tries | None = None
    invalid_prompt: PromptRef | None = None
    timeout_prompt: PromptRef | None = None
    default: MenuEnd | None = None


_NODE_SETTINGS = TypeAdapter[NodeSettings | None](NodeSettings | None)


@dataclass(frozen=True, kw_only=True, config=_YAML)
class Node(_YamlMapping):
    prompt: PromptRef
    options: Annotated[Mapping[Digit, AnyAction], _mapping("digit ", empty="must map digits to actions",
                                                           same_key=_digit)]
    timeout: Seconds = 5.0
    max_tries: Tries = 3
    invalid_prompt: PromptRef | None = None
    timeout_prompt: PromptRef | None = None
    default: MenuEnd = QueueAction(DEFAULT_QUEUE)  # nothing said: an agent
    description: str | None = None
    id: str = Field("", init=False)  # its key in the flow's nodes, set by the flow


@dataclass(frozen=True, kw_only=True, config=_YAML)
class Welcome(_YamlMapping):
    known: PromptRef | None = None  # for an identified caller
    unknown: PromptRef | None = None


def _named_nodes(nodes: Mapping[str, Node]) -> Mapping[str, Node]:
    for node_id, node in nodes.items():
        object.__setattr__(node, "id", node_id)  # frozen, and known only here; the one write, before anyone reads
    return nodes


@dataclass(frozen=True, kw_only=True, config=_YAML)
class Flow(_YamlMapping):
    entry: EntryName
    start: str
    nodes: Annotated[Mapping[NodeId, Node], _mapping("node ", empty="must be a non-empty mapping of node id → node"),
                     AfterValidator(_named_nodes)]
    welcome: Welcome | None = None
    defaults: NodeSettings | None = None
    description: str | None = None

    @property
    def welcome_known(self) -> str | None:
        return self.welcome.known if self.welcome else None

    @property
    def welcome_unknown(self) -> str | None:
        return self.welcome.unknown if self.welcome else None

    @model_validator(mode="wrap")
    @classmethod
    def _check_across_nodes(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """Defaults fill the nodes in; then the start node, menu targets and reachability are checked.

        The graph is read action by action from the YAML rather than from the validated flow, so that a wrong
        menu target is reported in the same run as a typo in some other option of its node.
        """
        if not isinstance(data, dict):
            return handler(data)
        data = _with_defaults(data, info.context)
        steps = _readable_steps(data.get("nodes"), info.context)
        return _validate_adding(handler, data, _graph_problems(data.get("start"), steps))


def _with_defaults(data: dict[Any, Any], context: Any) -> dict[Any, Any]:
    """The flow's raw mapping with its (valid) ``defaults`` copied into every node that does not give them."""
    try:
        _NODE_SETTINGS.validate_python(data.get("defaults"), context=context)
    except ValidationError:
        return data  # reported at 'defaults' itself; copying it would repeat the problem in every node
    defaults, nodes = data.get("defaults") or {}, data.get("nodes")
    if not defaults or not isinstance(nodes, dict):
        return data
    filled = _Mapping.like(nodes)
    for node_id, node in nodes.items():
        filled[node_id] = _Mapping.like(node, defaults) if isinstance(node, dict) else node
    return {**data, "nodes": filled}


_Step = tuple[tuple[str, ...], Action]  # where an action is (below the flow), and the action


def _readable_steps(nodes: object, context: Any) -> dict[str, list[_Step]]:
    """Every node with a valid id → the options and default among its actions that validate on their own."""
    steps: dict[str, list[_Step]] = {}
    if not isinstance(nodes, dict):
        return steps
    for node_id, node in nodes.items():
        if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
            continue
        places: list[tuple[tuple[str, ...], object]] = []
        if isinstance(node, dict) and isinstance(node.get("options"), dict):
            places += [(("options", str(_digit(digit))), raw) for digit, raw in node["options"].items()]
        if isinstance(node, dict) and "default" in node:
            places.append((("default",), node["default"]))
        steps[node_id] = []
        for where, raw in places:
            where = ("nodes", node_id, *where)
            while True:
                try:
                    steps[node_id].append((where, _ACTION.validate_python(raw, context=context)))
                except ValidationError:  # reported where the node itself is validated
                    if isinstance(raw, dict) and "then" in raw:  # a broken order still leads on to its ``then``
                        where, raw = (*where, "then"), raw["then"]
                        continue
                break
    return steps


def _menu_targets(where: tuple[str, ...], action: Action) -> Iterator[tuple[tuple[str, ...], str]]:
    for step in action_chain(action):
        if isinstance(step, MenuAction):
            yield where, step.node
        where = (*where, "then")


def _graph_problems(start: object, steps: Mapping[str, list[_Step]]) -> list[InitErrorDetails]:
    problems = [
        _problem(where, "unknown_node", f"unknown node {target!r}", target)
        for node_steps in steps.values() for place, action in node_steps
        for where, target in _menu_targets(place, action) if target not in steps
    ]
    if not isinstance(start, str):
        return problems  # missing or not text: reported as the field's own problem
    if start not in steps:
        return [*problems, _problem((), "unknown_start", f"start node {start!r} does not exist", start)]
    reachable, todo = {start}, [start]
    while todo:
        for place, action in steps[todo.pop()]:
            for _, target in _menu_targets(place, action):
                if target in steps and target not in reachable:
                    reachable.add(target)
                    todo.append(target)
    return [*problems, *(_problem(("nodes", node_id), "unreachable", f"unreachable from the start node {start!r}",
                                  node_id) for node_id in sorted(set(steps) - reachable))]


def _texts_in_every_language(texts: Mapping[str, str]) -> Mapping[str, str]:
    missing = [language for language in LANGUAGES if not texts.get(language, "").strip()]
    if missing:
        _raise([_problem((), "missing_text", f"missing prompt text in required language {language}", None)
                for language in missing])
    return MappingProxyType({language: text.strip() for language, text in texts.items()})


PromptTexts = Annotated[Mapping[Language, str], _mapping("language "), AfterValidator(_texts_in_every_language)]
_PROMPTS = TypeAdapter[Mapping[str, Mapping[str, str]]](Annotated[Mapping[PromptId, PromptTexts], _mapping("prompt ")])
_FLOW = TypeAdapter(Flow)


@plain_dataclass(frozen=True, slots=True)
class FlowSet:
    directory: Path
    flows: Mapping[str, Flow]
    prompts: Mapping[str, Mapping[str, str]]  # prompt id → language → text

    def flow(self, entry: str) -> Flow | None:
        return self.flows.get(entry)

    @property
    def recorded_dir(self) -> Path:
        return self.directory / RECORDED_DIR


# -- reading the files --------------------------------------------------------------------------------------


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers keys given twice (PyYAML silently keeps the last one)."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: list[Any] = []

    @classmethod
    def like(cls, mapping: Mapping[Any, Any], fallbacks: Mapping[Any, Any] | None = None) -> _Mapping:
        """A copy of ``mapping`` (keeping what it gave twice), with ``fallbacks`` for the keys it lacks."""
        copy = cls()
        copy.update(fallbacks or {})
        copy.update(mapping)
        copy.duplicates = list(getattr(mapping, "duplicates", ()))
        return copy


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


_LABELS = {"nodes": "node", "options": "option"}  # a key below these is named as such: node 'main', option '1'
_ACTION_PLACES = ("option", "default", "then")  # below these pydantic's location names the action type: skip it
_NOT_A_MAPPING = {"dataclass_type", "dataclass_args_type", "model_attributes_type", "dict_type", "mapping_type"}


def _describe(path: Path, error: ErrorDetails, first_label: str | None) -> str:
    """One problem as ``file: node 'main': option '1': field: what is wrong``."""
    loc, message = list(error["loc"]), error["msg"]
    if loc[-1:] == [_KEY]:
        loc = loc[:-2]  # a mapping key's own problem: its message names the key (and what it is)
        if loc[-1:] and loc[-1] in _LABELS:
            loc = loc[:-1]
    elif error["type"] == "missing":
        message, loc = f"missing {loc[-1]!r}", loc[:-1]
    elif error["type"] in _NOT_A_MAPPING:
        message = "expected a mapping"
    words: list[str] = []
    label, below_action = first_label, False
    for position, item in enumerate(loc):
        if below_action and item in ACTION_TYPES:
            below_action = False
            continue
        if label is not None:
            words.append(f"{label} {item!r}")
            below_action, label = label in _ACTION_PLACES, None
            continue
        below_action = item in _ACTION_PLACES
        if item in _LABELS and position < len(loc) - 1:
            label = _LABELS[str(item)]
            continue
        words.append(str(item))
    return ": ".join([path.name, *words, message])


def load_flows(directory: Path = DEFAULT_FLOWS_DIR) -> FlowSet:
    """Parse and validate every flow in ``directory``; raise one ``FlowError`` listing all problems."""
    problems: list[str] = []
    if not directory.is_dir():
        raise FlowError([f"{directory}: no such directory"])
    prompts, prompt_ids = _load_prompts(directory / PROMPTS_FILE, problems)
    flows: dict[str, Flow] = {}
    served_by: dict[str, Path] = {}
    files = sorted(path for path in directory.glob("*.yaml") if path.name != PROMPTS_FILE)
    if not files:
        problems.append(f"{directory}: no flow files (*.yaml besides {PROMPTS_FILE})")
    for path in files:
        raw = _read_yaml(path, problems)
        if raw is None:
            continue
        try:
            flow = _FLOW.validate_python(raw, context={"prompt_ids": prompt_ids})
        except ValidationError as invalid:
            problems += [_describe(path, error, None) for error in invalid.errors()]
            continue
        if flow.entry in flows:
            problems.append(f"{path.name}: entry {flow.entry!r} is already served by {served_by[flow.entry].name}")
            continue
        flows[flow.entry], served_by[flow.entry] = flow, path
    if problems:
        raise FlowError(problems)
    return FlowSet(directory=directory, flows=MappingProxyType(flows), prompts=prompts)


def _load_prompts(path: Path, problems: list[str]) -> tuple[Mapping[str, Mapping[str, str]], Collection[str]]:
    """The prompts, and the ids the flows may refer to (all that are given, so that one prompt's missing
    translation is not also reported at every node that plays it)."""
    if not path.exists():
        problems.append(f"{path.name}: missing (prompt id → {{{', '.join(LANGUAGES)}}} texts)")
        return MappingProxyType({}), ()
    raw = _read_yaml(path, problems)
    if raw is None:
        return MappingProxyType({}), ()
    if not isinstance(raw, dict):
        problems.append(f"{path.name}: expected a mapping of prompt id → texts")
        return MappingProxyType({}), ()
    try:
        prompts = _PROMPTS.validate_python(raw)
    except ValidationError as invalid:
        problems += [_describe(path, error, "prompt") for error in invalid.errors()]
        return MappingProxyType({}), frozenset(prompt_id for prompt_id in raw if isinstance(prompt_id, str))
    return prompts, frozenset(prompts)
