"""The panel's strings in Simplified Chinese (the default) and English, one JSON catalogue per page and language.

A page has its own namespace (its name: ``orders`` for the page whose template is ``orders.html``) and shares
``common`` with every page (the nav, errors, buttons, and the machine values several pages show). A namespace's
catalogues live beside its page, in its domain package: ``<package>/strings/<namespace>.<language>.json``
(``common``'s in this package), with keys written there without the namespace and used everywhere as
``<namespace>.<key>`` — ``t("orders.title")``, ``label("common.order_status", s)``. Templates read them as
``t("key")``; the page's JavaScript gets the same strings (its own namespace and ``common``, in its language only)
in its config block, so a string is never written twice and a page carries only its own. Enum values (agent status,
order kind, …) are keys too, so the server's machine values are shown in the operator's words. Every catalogue is
read once, when the web application is built (start-up): a missing or malformed file stops the platform there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from aiohttp import web

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
LANG_COOKIE = "cc_lang"
COMMON = "common"
COMMON_DIRECTORY = Path(__file__).parent  # common's catalogues are the web layer's own

Strings = Mapping[str, str]


def catalogue_path(directory: Path, namespace: str, language: str) -> Path:
    """Where ``namespace``'s catalogue in ``language`` lives, ``directory`` being its package's."""
    return directory / "strings" / f"{namespace}.{language}.json"


def load_catalogue(directory: Path, namespace: str, language: str) -> dict[str, str]:
    """One namespace's strings in one language, keyed ``<namespace>.<key>``."""
    path = catalogue_path(directory, namespace, language)
    strings = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(strings, dict) or not all(isinstance(text, str) for text in strings.values()):
        raise ValueError(f"{path}: a catalogue is one JSON object of key to text")
    return {f"{namespace}.{key}": text for key, text in strings.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class Catalogues:
    """Every page's strings: language -> namespace -> that namespace's strings merged with ``common``'s (what one
    page gets)."""

    strings: Mapping[str, Mapping[str, Strings]]

    @classmethod
    def load(cls, directories: Mapping[str, Path]) -> Catalogues:
        """The catalogues of each namespace in ``directories`` (namespace -> its package's directory), and
        ``common``'s."""
        loaded: dict[str, Mapping[str, Strings]] = {}
        for language in LANGUAGES:
            common = load_catalogue(COMMON_DIRECTORY, COMMON, language)
            pages = {namespace: MappingProxyType({**common, **load_catalogue(directory, namespace, language)})
                     for namespace, directory in directories.items() if namespace != COMMON}
            loaded[language] = MappingProxyType({COMMON: MappingProxyType(common), **pages})
        return cls(MappingProxyType(loaded))

    @property
    def namespaces(self) -> list[str]:
        return sorted(self.strings[DEFAULT_LANGUAGE])

    def page_strings(self, language: str, namespace: str = COMMON, *sections: str) -> dict[str, str]:
        """The strings a page in ``namespace`` may use (its own and ``common``), with those of the ``sections``
        other domains add to it, as its script receives them (a copy: the config block serialises it as JSON)."""
        strings = dict(self.strings[language][namespace])
        for section in sections:
            strings.update(self.strings[language][section])
        return strings

    def translator(self, language: str, namespace: str = COMMON, *sections: str) -> Callable[..., str]:
        """``t(key, **values)`` over a page's strings (``page_strings``); a key outside them shows as itself."""
        strings = self.strings[language][namespace] if not sections else self.page_strings(language, namespace,
                                                                                             *sections)

        def t(key: str, **values: object) -> str:
            # A missing key shows itself rather than breaking the page; a test keeps the catalogues complete.
            text = strings.get(key, key)
            return text.format(**values) if values else text

        return t


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
