"""The pages' string catalogues: complete in both languages, and every key a template or script uses is one its page
gets (its own namespace or ``common``), and every string of a page's namespace is used by that page. The pages, with
their catalogues, templates and scripts, are found as the platform finds them: declared by the plugins."""

from __future__ import annotations

import dataclasses
import re
import string
from pathlib import Path

import jinja2
import pytest

from callcenter.contract import Page, PageSection
from callcenter.db.session import Database
from callcenter.web import i18n
from callcenter.web.assets import SHARED_DIRECTORY
from callcenter.web.pages import LOGIN_PAGE, PANEL, SHARED_SCRIPT
from tests.apiclient import api_settings, assembled

WEB = Path(i18n.__file__).parent
SERVER_SOURCES = (WEB / "pages.py",)  # strings the server uses itself (log-in errors, the CSRF refusal)


@dataclasses.dataclass(frozen=True)
class Declared:
    """The platform's pages (the plugins' and the log-in) and their catalogues, as the web application has them."""

    pages: dict[str, Page | PageSection]  # by namespace: the pages and the sections other domains add to them
    catalogues: i18n.Catalogues
    templates: jinja2.Environment

    def template_path(self, name: str) -> Path:
        filename = self.templates.get_template(name).filename
        assert filename is not None, name
        return Path(filename)


@pytest.fixture(scope="module")
def declared(tmp_path_factory: pytest.TempPathFactory) -> Declared:
    root = tmp_path_factory.mktemp("i18n")
    panel = assembled(Database(f"sqlite+aiosqlite:///{root / 'unused.db'}"), api_settings(root)).web[PANEL]
    sections = [section for shown in panel.sections.values() for section in shown]  # their catalogues are theirs
    return Declared({page.name: page for page in (LOGIN_PAGE, *panel.pages, *sections)}, panel.strings,
                    panel.templates)


_LITERAL = r"""(["'])([\w.]+)\1"""
# Templates: t("key"), t("prefix." ~ value), the keys _page.html reads from {% set page_title = "key" %}, and
# t(link.label) in _nav.html (the declared pages' nav labels, checked from the declarations).
_TEMPLATE_CALL = re.compile(r"""\bt\(\s*(?:(["'])([\w.]+)\1\s*(~)?|(\w+))""")
_TEMPLATE_SET = re.compile(r"""{%-?\s*set\s+(?:page_title|back|forbidden)\b[^=]*=\s*""" + _LITERAL)
_TEMPLATE_KEY_VARIABLES = {"page_title", "back", "forbidden", "link"}
_TEMPLATE_PARENTS = re.compile(r"""{%-?\s*(?:extends|from|import|include)\s+["']([^"']+)["']""")
# Scripts: a key prefix is a namespace's literal ending in "." that a value is appended to, or one given to
# label(prefix, …), fieldLabel(path, prefix) or showFieldErrors' {fields: prefix or [prefixes]}; any other literal
# that starts with a namespace is a key.
_SCRIPT_CONCAT = re.compile(r"""(["'])([\w.]+\.)\1\s*\+""")
_SCRIPT_LABEL = re.compile(r"""label\(\s*""" + _LITERAL)
_SCRIPT_FIELD_LABEL = re.compile(r"""fieldLabel\([^,()]+,\s*""" + _LITERAL)
_SCRIPT_FIELDS = re.compile(r"""fields:\s*(\[[^\]]*\]|(["'])[\w.]+\2)""")


def _template_family(declared: Declared, name: str) -> list[Path]:
    """The template and every template it extends or imports from."""
    family: list[str] = []
    todo = [name]
    while todo:
        current = todo.pop()
        if current not in family:
            family.append(current)
            todo.extend(_TEMPLATE_PARENTS.findall(declared.template_path(current).read_text(encoding="utf-8")))
    return [declared.template_path(current) for current in family]


def _page_files(declared: Declared, namespace: str) -> tuple[list[Path], list[Path]]:
    page = declared.pages[namespace]
    scripts = [SHARED_DIRECTORY / SHARED_SCRIPT, *(page.directory / "static" / name for name in page.files()
                                                   if name.endswith(".js"))]
    return _template_family(declared, f"{namespace}.html"), scripts if len(scripts) > 1 else []


def _nav_labels(declared: Declared) -> set[str]:
    return {page.nav.label for page in declared.pages.values() if isinstance(page, Page) and page.nav is not None}


def _is_key(literal: str, namespaces: set[str]) -> bool:
    return literal.partition(".")[0] in namespaces and "." in literal


def _references(templates: list[Path], scripts: list[Path],
                namespaces: set[str]) -> tuple[set[str], set[str], set[str]]:
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
        found = {literal for _, literal in _SCRIPT_CONCAT.findall(text)
                 if _is_key(literal, namespaces)}  # not "fees." + x
        found |= {literal for _, literal in _SCRIPT_LABEL.findall(text) + _SCRIPT_FIELD_LABEL.findall(text)}
        for given, _ in _SCRIPT_FIELDS.findall(text):  # not a request body's {fields: ["id_number"]}
            found |= {literal for _, literal in re.findall(_LITERAL, given) if _is_key(literal, namespaces)}
        prefixes |= found
        keys |= {literal for _, literal in re.findall(_LITERAL, text)
                 if _is_key(literal, namespaces) and literal not in found}
    return keys, {prefix.rstrip(".") for prefix in prefixes}, unreadable


def _under(prefix: str, strings: i18n.Strings) -> list[str]:
    return [key for key in strings if key.startswith(prefix + ".")]


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _page_references(declared: Declared, namespace: str) -> tuple[set[str], set[str], set[str]]:
    keys, prefixes, unreadable = _references(*_page_files(declared, namespace), set(declared.catalogues.namespaces))
    return keys | _nav_labels(declared), prefixes, unreadable  # the nav is on every page behind the log-in


def test_every_page_is_found_with_its_files(declared: Declared) -> None:
    assert {"panel", "orders", "provider", "providers", "library", "status", "login"} <= declared.pages.keys()
    assert declared.catalogues.namespaces == sorted({i18n.COMMON, *declared.pages})
    for page in declared.pages.values():
        assert (page.directory / "templates" / f"{page.name}.html").is_file(), page.path
        for name in page.files():
            assert (page.directory / "static" / name).is_file(), page.path


def test_both_languages_have_every_string_with_the_same_placeholders(declared: Declared) -> None:
    directories = {i18n.COMMON: i18n.COMMON_DIRECTORY} | {name: page.directory for name, page in declared.pages.items()}
    for namespace, directory in directories.items():
        chinese, english = (i18n.load_catalogue(directory, namespace, language) for language in i18n.LANGUAGES)
        assert chinese.keys() == english.keys(), namespace
        for key, text in chinese.items():
            assert text.strip() and english[key].strip(), key
            assert _placeholders(text) == _placeholders(english[key]), key


def test_a_page_uses_only_keys_it_gets_and_gets_only_its_own_and_the_common_strings(declared: Declared) -> None:
    for namespace in declared.pages:
        strings = declared.catalogues.page_strings("zh-CN", namespace)
        assert {key.partition(".")[0] for key in strings} == {namespace, i18n.COMMON}
        keys, prefixes, unreadable = _page_references(declared, namespace)
        assert not unreadable, ("a key the test cannot check", namespace, unreadable)
        assert sorted(keys - strings.keys()) == [], namespace
        assert sorted(prefix for prefix in prefixes if not _under(prefix, strings)) == [], namespace


def test_every_string_is_used_by_its_page_and_every_common_one_by_some_page(declared: Declared) -> None:
    namespaces = set(declared.catalogues.namespaces)
    server = {literal for path in SERVER_SOURCES
              for _, literal in re.findall(_LITERAL, path.read_text(encoding="utf-8")) if _is_key(literal, namespaces)}
    used: dict[str, set[str]] = {}
    for namespace in declared.pages:
        keys, prefixes, _ = _page_references(declared, namespace)
        strings = declared.catalogues.page_strings("zh-CN", namespace)
        used[namespace] = keys | server | {key for prefix in prefixes for key in _under(prefix, strings)}
    everything = set().union(*used.values())
    for namespace in sorted(namespaces):
        own = declared.catalogues.page_strings("zh-CN", namespace).keys()
        unused = {key for key in own if key.startswith(namespace + ".")} - used.get(namespace, everything)
        assert sorted(unused) == [], namespace


def test_a_page_translator_formats_and_shows_an_unknown_key_as_itself(declared: Declared) -> None:
    catalogues = declared.catalogues
    assert catalogues.translator("en", "login")("login.locked", minutes=15).startswith("Too many")
    assert catalogues.translator("zh-CN", "login")("common.nav.orders") == "工单"
    assert catalogues.translator("zh-CN")("no.such.key") == "no.such.key"
    # Another page's strings are not this page's: they show as their key.
    assert catalogues.translator("zh-CN", "login")("orders.title") == "orders.title"


def test_the_extractor_finds_what_it_must_check(tmp_path: Path) -> None:
    """The checks above are only as good as the reading of the files: a wrong key in each form is caught."""
    template = tmp_path / "page.html"
    template.write_text('{% set page_title = "orders.title" %}{{ t("orders.nope") }}{{ t("common.agent_status." ~ s) }}'
                        "{{ t(name) }}", encoding="utf-8")
    script = tmp_path / "page.js"
    script.write_text('t("orders.field." + name); x = "fees." + s; CC.label("common.service", x); say(t("common.bad"));'
                      'CC.showFieldErrors(f, l, m, r, { fields: ["orders.field", "common.nope"], fix: "orders.x" });',
                      encoding="utf-8")
    keys, prefixes, unreadable = _references([template], [script], {"orders", "common"})
    assert keys == {"orders.title", "orders.nope", "common.bad", "orders.x"}
    assert prefixes == {"common.agent_status", "orders.field", "common.service", "common.nope"}
    assert unreadable == {"page.html: t(name)"}
