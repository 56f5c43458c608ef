"""The pages' string catalogues: complete in both languages, and every key a template or script uses is one its page
gets (its own namespace or ``common``), and every string of a page's namespace is used by that page."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from callcenter.web import i18n

WEB = Path(i18n.__file__).parent
TEMPLATES, STATIC = WEB / "templates", WEB / "static"
SERVER_SOURCES = (WEB / "pages.py", WEB / "app.py")  # strings the server uses itself (log-in errors, 403 texts)
PAGE_NAMESPACES = sorted(set(i18n.NAMESPACE_PACKAGES) - {i18n.COMMON})

_LITERAL = r"""(["'])([\w.]+)\1"""
# Templates: t("key"), t("prefix." ~ value), and the keys _page.html reads from {% set page_title = "key" %}.
_TEMPLATE_CALL = re.compile(r"""\bt\(\s*(?:(["'])([\w.]+)\1\s*(~)?|(\w+))""")
_TEMPLATE_SET = re.compile(r"""{%-?\s*set\s+(?:page_title|back|forbidden)\b[^=]*=\s*""" + _LITERAL)
_TEMPLATE_KEY_VARIABLES = {"page_title", "back", "forbidden"}
_TEMPLATE_PARENTS = re.compile(r"""{%-?\s*(?:extends|from|import|include)\s+["']([^"']+)["']""")
# Scripts: a key prefix is a namespace's literal ending in "." that a value is appended to, or one given to
# label(prefix, …), fieldLabel(path, prefix) or showFieldErrors' {fields: prefix or [prefixes]}; any other literal
# that starts with a namespace is a key.
_SCRIPT_CONCAT = re.compile(r"""(["'])([\w.]+\.)\1\s*\+""")
_SCRIPT_LABEL = re.compile(r"""label\(\s*""" + _LITERAL)
_SCRIPT_FIELD_LABEL = re.compile(r"""fieldLabel\([^,()]+,\s*""" + _LITERAL)
_SCRIPT_FIELDS = re.compile(r"""fields:\s*(\[[^\]]*\]|(["'])[\w.]+\2)""")


def _template_family(name: str) -> list[Path]:
    """The template and every template it extends or imports from."""
    family: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in family:
            family.append(current)
            todo.extend(_TEMPLATE_PARENTS.findall((TEMPLATES / current).read_text(encoding="utf-8")))
    return [TEMPLATES / current for current in family]


def _page_files(namespace: str) -> tuple[list[Path], list[Path]]:
    template = "index.html" if namespace == "status" else f"{namespace}.html"
    script = STATIC / f"{namespace}.js"
    return _template_family(template), [STATIC / "common.js", script] if script.exists() else []


def _is_key(literal: str) -> bool:
    return literal.partition(".")[0] in i18n.NAMESPACE_PACKAGES and "." in literal


def _references(templates: list[Path], scripts: list[Path]) -> tuple[set[str], set[str], set[str]]:
    """(keys, key prefixes, template t() calls whose key the test cannot read) of a page's files."""
    keys: set[str] = set()
    prefixes: set[str] = set()
    unreadable: set[str] = set()
    for path in templates:
        text = path.read_text(encoding="utf-8")
        for _, literal, appended, variable in _TEMPLATE_CALL.findall(text):
            if variable and variable not in _TEMPLATE_KEY_VARIABLES:
                unreadable.add(f"{path.name}: t({variable})")
            elif literal:
                (prefixes if appended else keys).add(literal)
        keys.update(literal for _, literal in _TEMPLATE_SET.findall(text))
    for path in scripts:
        text = path.read_text(encoding="utf-8")
        found = {literal for _, literal in _SCRIPT_CONCAT.findall(text) if _is_key(literal)}  # not "fees." + x
        found |= {literal for _, literal in _SCRIPT_LABEL.findall(text) + _SCRIPT_FIELD_LABEL.findall(text)}
        for given, _ in _SCRIPT_FIELDS.findall(text):
            found |= {literal for _, literal in re.findall(_LITERAL, given)}
        prefixes |= found
        keys |= {literal for _, literal in re.findall(_LITERAL, text) if _is_key(literal) and literal not in found}
    return keys, {prefix.rstrip(".") for prefix in prefixes}, unreadable


def _under(prefix: str, strings: i18n.Strings) -> list[str]:
    return [key for key in strings if key.startswith(prefix + ".")]


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


@pytest.mark.parametrize("namespace", sorted(i18n.NAMESPACE_PACKAGES))
def test_both_languages_have_every_string_with_the_same_placeholders(namespace: str) -> None:
    chinese, english = (i18n.load_catalogue(namespace, language) for language in i18n.LANGUAGES)
    assert chinese.keys() == english.keys()
    for key, text in chinese.items():
        assert text.strip() and english[key].strip(), key
        assert _placeholders(text) == _placeholders(english[key]), key


@pytest.mark.parametrize("namespace", PAGE_NAMESPACES)
def test_a_page_uses_only_keys_it_gets_and_gets_only_its_own_and_the_common_strings(namespace: str) -> None:
    strings = i18n.page_strings("zh-CN", namespace)
    assert {key.partition(".")[0] for key in strings} == {namespace, i18n.COMMON}
    keys, prefixes, unreadable = _references(*_page_files(namespace))
    assert not unreadable, "a key the test cannot check"
    assert sorted(keys - strings.keys()) == []
    assert sorted(prefix for prefix in prefixes if not _under(prefix, strings)) == []


def test_every_string_is_used_by_its_page_and_every_common_one_by_some_page() -> None:
    server = {literal for path in SERVER_SOURCES
              for _, literal in re.findall(_LITERAL, path.read_text(encoding="utf-8")) if _is_key(literal)}
    used: dict[str, set[str]] = {}
    for namespace in PAGE_NAMESPACES:
        keys, prefixes, _ = _references(*_page_files(namespace))
        strings = i18n.page_strings("zh-CN", namespace)
        used[namespace] = keys | server | {key for prefix in prefixes for key in _under(prefix, strings)}
    everything = set().union(*used.values())
    for namespace in sorted(i18n.NAMESPACE_PACKAGES):
        unused = i18n.load_catalogue(namespace, "zh-CN").keys() - used.get(namespace, everything)
        assert sorted(unused) == [], namespace


def test_a_page_translator_formats_and_shows_an_unknown_key_as_itself() -> None:
    assert i18n.translator("en", "login")("login.locked", minutes=15).startswith("Too many")
    assert i18n.translator("zh-CN", "login")("common.nav.orders") == "工单"
    assert i18n.translator("zh-CN")("no.such.key") == "no.such.key"
    # Another page's strings are not this page's: they show as their key.
    assert i18n.translator("zh-CN", "login")("orders.title") == "orders.title"


def test_the_extractor_finds_what_it_must_check(tmp_path: Path) -> None:
    """The checks above are only as good as the reading of the files: a wrong key in each form is caught."""
    template = tmp_path / "page.html"
    template.write_text('{% set page_title = "orders.title" %}{{ t("orders.nope") }}{{ t("common.agent_status." ~ s) }}'
                        "{{ t(name) }}", encoding="utf-8")
    script = tmp_path / "page.js"
    script.write_text('t("orders.field." + name); x = "fees." + s; CC.label("common.service", x); say(t("common.bad"));'
                      'CC.showFieldErrors(f, l, m, r, { fields: ["orders.field", "common.nope"], fix: "orders.x" });',
                      encoding="utf-8")
    keys, prefixes, unreadable = _references([template], [script])
    assert keys == {"orders.title", "orders.nope", "common.bad", "orders.x"}
    assert prefixes == {"common.agent_status", "orders.field", "common.service", "common.nope"}
    assert unreadable == {"page.html: t(name)"}
