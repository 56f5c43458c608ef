"""The panel's strings in Simplified Chinese (the default) and English, one JSON catalogue per page and language.

A page has its own namespace (its template's name: ``orders`` for ``orders.html``) and shares ``common`` with every
page (the nav, errors, buttons, and the machine values several pages show). A namespace's catalogues live beside its
domain, ``<package>/strings/<namespace>.<language>.json`` (NAMESPACE_PACKAGES), with keys written there without the
namespace and used everywhere as ``<namespace>.<key>`` — ``t("orders.title")``, ``label("common.order_status", s)``.
Templates read them as ``t("key")``; the page's JavaScript gets the same strings (its own namespace and ``common``,
in its language only) in its config block, so a string is never written twice and a page carries only its own.
Enum values (agent status, order kind, …) are keys too, so the server's machine values are shown in the operator's
words. Every catalogue is read once, at import (start-up): a missing or malformed file stops the platform there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType

from aiohttp import web

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "cc_lang"
COMMON = "common"

# Which package's strings/ folder holds each namespace: the domain its page belongs to.
NAMESPACE_PACKAGES: Mapping[str, str] = MappingProxyType({
    COMMON: "callcenter.web",
    "panel": "callcenter.desk",  # the agent page, /
    "elders": "callcenter.elders",
    "library": "callcenter.recordings",
    "orders": "callcenter.orders",
    "provider": "callcenter.providers",  # the providers' own portal, /provider
    "providers": "callcenter.providers",  # the centre's registry, /providers-registry
    "supervision_cases": "callcenter.supervision_cases",
    "volunteers": "callcenter.volunteers",
    "wallboard": "callcenter.wallboard",
    "login": "callcenter.users",
    "status": "callcenter.health",  # the platform status page, /status
})

Strings = Mapping[str, str]


def catalogue_path(namespace: str, language: str) -> Traversable:
    return resources.files(NAMESPACE_PACKAGES[namespace]) / "strings" / f"{namespace}.{language}.json"


def load_catalogue(namespace: str, language: str) -> dict[str, str]:
    """One namespace's strings in one language, keyed ``<namespace>.<key>``."""
    path = catalogue_path(namespace, language)
    strings = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(strings, dict) or not all(isinstance(text, str) for text in strings.values()):
        raise ValueError(f"{path}: a catalogue is one JSON object of key to text")
    return {f"{namespace}.{key}": text for key, text in strings.items()}


def _load_all() -> Mapping[str, Mapping[str, Strings]]:
    """language -> namespace -> that namespace's strings merged with ``common``'s (what one page gets)."""
    loaded: dict[str, Mapping[str, Strings]] = {}
    for language in LANGUAGES:
        common = load_catalogue(COMMON, language)
        loaded[language] = MappingProxyType({
            namespace: MappingProxyType(common if namespace == COMMON
                                        else {**common, **load_catalogue(namespace, language)})
            for namespace in NAMESPACE_PACKAGES})
    return MappingProxyType(loaded)


_PAGE_STRINGS = _load_all()


def page_strings(language: str, namespace: str = COMMON) -> dict[str, str]:
    """The strings a page in ``namespace`` may use (its own and ``common``), as its script receives them (a copy:
    the config block serialises it as JSON)."""
    return dict(_PAGE_STRINGS[language][namespace])


def language_of(request: web.Request) -> str:
    """``?lang=`` first (the switch link), then the cookie it left, then Chinese."""
    for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def remember_language(request: web.Request, response: web.StreamResponse, language: str, *, secure: bool) -> None:
    """A switch by query parameter sticks for later pages (a preference, not a credential: readable by JS)."""
    if request.query.get("lang") == language and request.cookies.get(LANG_COOKIE) != language:
        response.set_cookie(LANG_COOKIE, language, max_age=365 * 24 * 3600, path="/", samesite="Strict",
                            secure=secure)


def translator(language: str, namespace: str = COMMON) -> Callable[..., str]:
    """``t(key, **values)`` over a page's strings (``page_strings``); a page's key outside them shows as itself."""
    strings = _PAGE_STRINGS[language][namespace]

    def t(key: str, **values: object) -> str:
        # A missing key shows itself rather than breaking the page; a test keeps the catalogues complete.
        text = strings.get(key, key)
        return text.format(**values) if values else text

    return t
