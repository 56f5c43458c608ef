"""Loading and validating IVR flows: the shipped flows load; every kind of mistake is named with its place."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from callcenter.ivr.flows import (
    DEFAULT_FLOWS_DIR,
    CallbackAction,
    FlowError,
    HangupAction,
    MenuAction,
    OrderAction,
    QueueAction,
    RepeatAction,
    load_flows,
)
from callcenter.orders.models import WorkOrderKind

PROMPTS = """\
welcome: {zh-CN: 欢迎, en: Welcome}
menu: {zh-CN: 菜单, en: Menu}
sub: {zh-CN: 子菜单, en: Sub menu}
oops: {zh-CN: 错误, en: Oops}
"""

FLOW = """\
entry: test
start: main
welcome: {unknown: welcome}
defaults: {timeout: 4, max_tries: 2, invalid_prompt: oops, timeout_prompt: oops}
nodes:
  main:
    prompt: menu
    options:
      "1": {action: menu, node: sub}
      "2": {action: order, kind: complaint, then: {action: queue, queue: hotline}}
      "9": {action: repeat}
  sub:
    prompt: sub
    timeout: 8
    options:
      "0": {action: menu, node: main}
      "#": {action: callback}
"""


def write(directory: Path, flow: str = FLOW, prompts: str = PROMPTS, name: str = "test.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "prompts.yaml").write_text(textwrap.dedent(prompts), encoding="utf-8")
    (directory / name).write_text(textwrap.dedent(flow), encoding="utf-8")
    return directory


def problems(directory: Path) -> list[str]:
    with pytest.raises(FlowError) as caught:
        load_flows(directory)
    assert str(caught.value).startswith("invalid IVR flows:")
    return list(caught.value.problems)


def test_the_shipped_flows_load_cleanly() -> None:
    flows = load_flows(DEFAULT_FLOWS_DIR)
    hotline = flows.flow("hotline")
    assert hotline is not None
    assert (hotline.welcome_known, hotline.welcome_unknown) == ("welcome-known", "welcome")
    main = hotline.nodes[hotline.start]
    assert set(main.options) == {"1", "2", "3", "4", "9", "0"}
    assert main.options["1"] == MenuAction("services")
    assert isinstance(main.options["4"], CallbackAction)
    assert isinstance(main.options["9"], RepeatAction)
    assert main.options["0"] == QueueAction("hotline", "to-agent")
    assert main.default == QueueAction("hotline", "to-agent")
    for digit, kind in (("2", WorkOrderKind.CONSULTATION), ("3", WorkOrderKind.COMPLAINT)):
        action = main.options[digit]
        assert isinstance(action, OrderAction)
        assert action.kind is kind
        assert action.then == QueueAction("hotline")
    services = hotline.nodes["services"]
    chosen = {digit: action.service for digit, action in services.options.items() if isinstance(action, OrderAction)}
    assert chosen == {"1": "meal_delivery", "2": "cleaning", "3": "bathing", "4": "repair", "5": "escort"}
    assert services.options["0"] == MenuAction("main")
    for prompt_id in ("sos-reassure", "please-hold", "welcome", "welcome-known"):
        assert set(flows.prompts[prompt_id]) == {"zh-CN", "en"}
    assert flows.prompts["sos-reassure"]["zh-CN"] == "您好，这里是养老服务中心，我们正在为您接通，请不要挂机。"


def test_a_valid_flow_is_typed_and_immutable(tmp_path: Path) -> None:
    flow = load_flows(write(tmp_path)).flow("test")
    assert flow is not None
    main, sub = flow.nodes["main"], flow.nodes["sub"]
    assert (main.timeout, main.max_tries, main.invalid_prompt) == (4.0, 2, "oops")
    assert sub.timeout == 8.0
    assert main.default == QueueAction("hotline")  # nothing said: an agent
    assert isinstance(sub.options["#"], CallbackAction)
    with pytest.raises(dataclasses.FrozenInstanceError):
        main.timeout = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        main.options["5"] = RepeatAction()  # type: ignore[index]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param('{action: menu, node: sub}', '{action: menu, node: nowhere}',
                     "test.yaml: node 'main': option '1': unknown node 'nowhere'", id="unknown-node"),
        pytest.param('{action: repeat}', '{action: transfer}',
                     "test.yaml: node 'main': option '9': unknown action 'transfer'", id="unknown-action"),
        pytest.param("prompt: sub\n", "prompt: nope\n",
                     "test.yaml: node 'sub': prompt: unknown prompt id 'nope'", id="unknown-prompt"),
        pytest.param('"9": {action: repeat}', '"1": {action: repeat}',
                     "test.yaml: node 'main': digit '1' is given twice", id="duplicate-digit"),
        pytest.param('"9": {action: repeat}', '9: {action: repeat}\n      "9": {action: hangup}',
                     "test.yaml: node 'main': digit '9' is given twice", id="duplicate-digit-int-and-str"),
        pytest.param('"9": {action: repeat}', '"A": {action: repeat}',
                     "test.yaml: node 'main': digit 'A' is not one of 0-9, * or #", id="bad-digit"),
        pytest.param('"9": {action: repeat}', '"12": {action: repeat}',
                     "test.yaml: node 'main': digit '12' is not one of 0-9, * or #", id="two-digits"),
        pytest.param("kind: complaint", "kind: praise",
                     "test.yaml: node 'main': option '2': kind: unknown order kind 'praise'", id="unknown-kind"),
        pytest.param("queue: hotline", "queue: vip",
                     "test.yaml: node 'main': option '2': then: queue: unknown queue 'vip'", id="unknown-queue"),
        pytest.param("start: main", "start: lobby", "test.yaml: start node 'lobby' does not exist",
                     id="start-does-not-exist"),
        pytest.param("start: main\n", "", "test.yaml: missing 'start'", id="start-missing"),
        pytest.param('"1": {action: menu, node: sub}', '"1": {action: hangup}',
                     "test.yaml: node 'sub': unreachable from the start node 'main'", id="unreachable"),
        pytest.param("timeout: 8", "timeout: 0",
                     "test.yaml: node 'sub': timeout: 0 is not a number of seconds between 1 and 60", id="timeout"),
        pytest.param("timeout: 8", "default: {action: repeat}",
                     "test.yaml: node 'sub': default: must end the menu", id="default-loops"),
        pytest.param("timeout: 8", "timout: 8", "test.yaml: node 'sub': unknown key 'timout'", id="typo"),
        pytest.param("then: {action: queue, queue: hotline}", "then: {action: callback}",
                     "test.yaml: node 'main': option '2': then: action 'callback' is not allowed here",
                     id="then-callback"),
        pytest.param('"9": {action: repeat}', '"9": {action: repeat, prompt: oops}',
                     "test.yaml: node 'main': option '9': unknown key 'prompt' (allowed: action)", id="repeat-prompt"),
        pytest.param("timeout: 8", "timeout: 8\n    id: sub",
                     "test.yaml: node 'sub': unknown key 'id' (allowed: default, description, invalid_prompt, "
                     "max_tries, options, prompt, timeout, timeout_prompt)", id="node-id-is-its-key"),
        pytest.param("timeout: 8", "timeout: 8\n    timeout: 9", "test.yaml: node 'sub': 'timeout' is given twice",
                     id="key-twice"),
        pytest.param("entry: test", "entry: Test", "test.yaml: entry: must name the entry this flow serves",
                     id="bad-entry"),
        pytest.param("  sub:\n", "  Sub:\n", "test.yaml: node 'Sub': id must be lower-case letters", id="bad-node-id"),
        pytest.param("welcome: {unknown: welcome}", "welcome: {unknown: hello}",
                     "test.yaml: welcome: unknown: unknown prompt id 'hello'", id="welcome-prompt"),
        pytest.param("prompt: sub\n", "options: {}\n", "test.yaml: node 'sub': missing 'prompt'", id="no-prompt"),
        pytest.param("  sub:\n    prompt: sub\n", "  sub: [sub]\n  old:\n    prompt: sub\n",
                     "test.yaml: node 'sub': expected a mapping", id="node-not-a-mapping"),
        pytest.param('"#": {action: callback}', '"#": {action: callback}\n    options: {}',
                     "test.yaml: node 'sub': 'options' is given twice", id="options-twice"),
        pytest.param('"9": {action: repeat}', '"9": {action: queue, queue: {a: "{b}"}}',
                     "test.yaml: node 'main': option '9': queue: unknown queue {'a': '{b}'}", id="braces-in-a-value"),
        pytest.param("kind: complaint", "kind: complaint, title: 5",
                     "test.yaml: node 'main': option '2': title: Input should be a valid string", id="title"),
        pytest.param('"9": {action: repeat}', '"9": {node: main}',
                     "test.yaml: node 'main': option '9': expected a mapping with an 'action' key", id="no-action"),
        pytest.param("then: {action: queue, queue: hotline}", "then: {action: menu, node: sub, queue: hotline}",
                     "test.yaml: node 'main': option '2': then: unknown key 'queue' (allowed: action, node, prompt)",
                     id="then-unknown-key"),
    ],
)
def test_each_mistake_is_named_with_file_node_and_problem(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in FLOW
    found = problems(write(tmp_path, FLOW.replace(old, new, 1)))
    assert any(problem.startswith(expected) for problem in found), found


def test_missing_prompt_text_in_a_required_language(tmp_path: Path) -> None:
    without_english = PROMPTS.replace("sub: {zh-CN: 子菜单, en: Sub menu}", "sub: {zh-CN: 子菜单}")
    found = problems(write(tmp_path, prompts=without_english))
    assert found == ["prompts.yaml: prompt 'sub': missing prompt text in required language en"]


def test_unknown_language_and_bad_prompt_id(tmp_path: Path) -> None:
    extra = "Bad Id: {zh-CN: x, en: y, fr: z}\nx: {zh-CN: a, en: b, de: c}\n"
    found = problems(write(tmp_path, prompts=PROMPTS + extra))
    assert "prompts.yaml: prompt 'Bad Id': id must be lower-case letters, digits and '-'" in found
    assert any(problem.startswith("prompts.yaml: prompt 'x': unknown language 'de'") for problem in found)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    broken = FLOW.replace("node: sub", "node: nowhere").replace("kind: complaint", "kind: praise")
    write(tmp_path, broken)
    (tmp_path / "other.yaml").write_text("entry: test\nstart: a\nnodes:\n  a: {prompt: menu, options: {'1': {action: "
                                         "queue, queue: hotline}}}\n", encoding="utf-8")
    found = problems(tmp_path)
    assert any("unknown node 'nowhere'" in problem for problem in found)
    assert any("unknown order kind 'praise'" in problem for problem in found)
    assert any("node 'sub': unreachable" in problem for problem in found)
    # The second file is fine on its own; only the first file's entry is lost, so it is not a duplicate here.
    assert len(found) >= 3


def test_two_files_serving_one_entry(tmp_path: Path) -> None:
    write(tmp_path)
    (tmp_path / "again.yaml").write_text(FLOW, encoding="utf-8")
    assert problems(tmp_path) == ["test.yaml: entry 'test' is already served by again.yaml"]


def test_not_yaml_missing_prompts_and_empty_directory(tmp_path: Path) -> None:
    write(tmp_path, "entry: [unclosed")
    assert problems(tmp_path)[0].startswith("test.yaml: cannot be read as YAML")
    (tmp_path / "prompts.yaml").unlink()
    assert any(problem.startswith("prompts.yaml: missing") for problem in problems(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "prompts.yaml").write_text(PROMPTS, encoding="utf-8")
    assert problems(empty) == [f"{empty}: no flow files (*.yaml besides prompts.yaml)"]



def test_a_broken_default_is_reported_once_where_it_is_written(tmp_path: Path) -> None:
    broken = FLOW.replace("defaults: {timeout: 4,", "defaults: {timeout: 0, default: {action: menu, node: sub},")
    assert problems(write(tmp_path, broken)) == [
        "test.yaml: defaults: timeout: 0 is not a number of seconds between 1 and 60",
        "test.yaml: defaults: default: must end the menu (queue, callback or hangup) after max tries",
    ]


def test_defaults_fill_in_every_node_that_does_not_say(tmp_path: Path) -> None:
    with_default = FLOW.replace("timeout_prompt: oops}", "timeout_prompt: oops, default: {action: hangup}}")
    flow = load_flows(write(tmp_path, with_default)).flow("test")
    assert flow is not None
    assert [(node.id, node.timeout, node.max_tries, node.default) for node in flow.nodes.values()] == [
        ("main", 4.0, 2, HangupAction()), ("sub", 8.0, 2, HangupAction())]


def test_a_menu_target_is_checked_even_behind_a_broken_order(tmp_path: Path) -> None:
    broken = FLOW.replace('"1": {action: menu, node: sub}',
                          '"1": {action: order, kind: praise, then: {action: menu, node: nowhere}}')
    found = problems(write(tmp_path, broken))
    assert any(problem.startswith("test.yaml: node 'main': option '1': kind: unknown order kind 'praise'")
               for problem in found), found
    assert "test.yaml: node 'main': option '1': then: unknown node 'nowhere'" in found
    assert "test.yaml: node 'sub': unreachable from the start node 'main'" in found


def test_a_prompt_missing_a_translation_is_not_also_unknown_to_the_flows(tmp_path: Path) -> None:
    found = problems(write(tmp_path, prompts=PROMPTS.replace("menu: {zh-CN: 菜单, en: Menu}", "menu: {en: Menu}")))
    assert found == ["prompts.yaml: prompt 'menu': missing prompt text in required language zh-CN"]


def test_actions_built_in_code_compare_with_the_loaded_ones() -> None:
    assert QueueAction("hotline", "to-agent") == QueueAction(queue="hotline", prompt="to-agent")
    assert OrderAction(WorkOrderKind.COMPLAINT, MenuAction("main")).then.type == "menu"
    assert RepeatAction().prompt is None
