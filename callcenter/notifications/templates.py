"""SMS texts: the catalogues ``strings/sms.<language>.json`` (key → text with ``{placeholders}``, Simplified Chinese
first, English too), rendered with the values a sender gives, and the one-SMS length rule.

Rendering refuses a missing or an unexpected value, naming it (``values.<name>``). A value for a placeholder named
``name`` or ending in ``_name`` is always masked to the family name (张桂兰 → 张某某): a text message is read on a
locked screen and forwarded, so it carries no more than needed — no address, no ID number, no full name.

Every message is one SMS (one segment): 70 characters in UCS-2 (any Chinese text), 160 GSM-7 septets otherwise
(the GSM extension characters such as ``€`` and ``{`` take two). A longer text is refused (``body``): aiosmpplib's
long-message path (SAR segmentation) is not used (docs/architecture.md, *SMS and notifications*).
"""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from aiosmpplib import GSM7BitCodec

from callcenter.api.errors import Invalid

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
STRINGS = Path(__file__).parent / "strings"
GSM7_LIMIT = 160  # septets in one SMS
UCS2_LIMIT = 70  # UTF-16 code units in one SMS
_GSM = GSM7BitCodec()


def mask_name(name: str) -> str:
    """The family name and 某 for the rest (张桂兰 → 张某某, Li Wei → Li ***): enough for a relative to know whom the
    message is about."""
    name = name.strip()
    if not name:
        return name
    if " " in name:  # a Latin-script name: keep the first word
        first, _, rest = name.partition(" ")
        return f"{first} {'*' * min(3, len(rest.replace(' ', '')))}"
    return name[0] + "某" * min(2, max(1, len(name) - 1))


def _masked(placeholder: str) -> bool:
    return placeholder == "name" or placeholder.endswith("_name")


def sms_length(text: str) -> tuple[int, int, str]:
    """(length, limit, alphabet) of ``text`` as one SMS: GSM-7 septets when every character is in the GSM
    alphabet, else UTF-16 code units (UCS-2, what carriers bill Chinese text by)."""
    if GSM7BitCodec.is_gsm_text(text):
        return len(_GSM.encode(text)[0]), GSM7_LIMIT, "GSM-7"
    return len(text.encode("utf-16-be")) // 2, UCS2_LIMIT, "UCS-2"


def check_one_sms(text: str, *, field: str = "body") -> None:
    length, limit, alphabet = sms_length(text)
    if length > limit:
        raise Invalid(f"the SMS text is {length} characters long; one SMS holds {limit} in {alphabet} and longer "
                      "messages are not sent (shorten the values or the template)", field=field)


def placeholders(text: str) -> frozenset[str]:
    """The ``{names}`` in ``text``; a catalogue text with a format spec, a conversion or an attribute is refused."""
    names: set[str] = set()
    for _literal, name, spec, conversion in string.Formatter().parse(text):
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise ValueError(f"placeholder {{{name}}} must be a plain name, without format or conversion")
        names.add(name)
    return frozenset(names)


@dataclasses.dataclass(frozen=True, slots=True)
class Rendered:
    body: str
    values: dict[str, str]


class Templates:
    """The catalogues of every language, read once (a missing key in one language or a malformed text stops the
    platform at start, like the panel's catalogues)."""

    def __init__(self, catalogues: Mapping[str, Mapping[str, str]]) -> None:
        self._texts = MappingProxyType({language: MappingProxyType(dict(texts))
                                        for language, texts in catalogues.items()})
        keys = {language: set(texts) for language, texts in self._texts.items()}
        first = keys[DEFAULT_LANGUAGE]
        for language, found in keys.items():
            if found != first:
                raise ValueError(f"sms.{language}.json and sms.{DEFAULT_LANGUAGE}.json differ in keys: "
                                 f"{sorted(found ^ first)}")
        for language, texts in self._texts.items():
            for key, text in texts.items():
                if placeholders(text) != placeholders(self._texts[DEFAULT_LANGUAGE][key]):
                    raise ValueError(f"sms.{language}.json: {key} has other placeholders than in "
                                     f"{DEFAULT_LANGUAGE}")

    @classmethod
    def load(cls, directory: Path = STRINGS) -> Templates:
        catalogues: dict[str, dict[str, str]] = {}
        for language in LANGUAGES:
            path = directory / f"sms.{language}.json"
            texts = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(texts, dict) or not all(isinstance(text, str) for text in texts.values()):
                raise ValueError(f"{path}: a catalogue is one JSON object of key to text")
            for text in texts.values():
                placeholders(text)
            catalogues[language] = texts
        return cls(catalogues)

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self._texts[DEFAULT_LANGUAGE])

    def placeholders_of(self, key: str) -> frozenset[str]:
        return placeholders(self._text(key, DEFAULT_LANGUAGE))

    def render(self, key: str, values: Mapping[str, object], language: str = DEFAULT_LANGUAGE, *,
               prefix: str = "") -> Rendered:
        """The text of ``key`` in ``language`` with ``values``, masked where the placeholder names a person,
        after ``prefix`` (the signature 【…】), checked to fit one SMS; with the values as shown (a template-based
        gateway is sent those, not the text)."""
        if language not in self._texts:
            raise Invalid(f"no SMS texts in {language!r}: one of {', '.join(LANGUAGES)}", field="language")
        text = self._text(key, language)
        wanted = placeholders(text)
        missing = sorted(wanted - set(values))
        if missing:
            raise Invalid(f"template {key} needs a value for {', '.join(missing)}", field=f"values.{missing[0]}")
        extra = sorted(set(values) - wanted)
        if extra:
            raise Invalid(f"template {key} has no placeholder {{{extra[0]}}} (it takes {', '.join(sorted(wanted))})",
                          field=f"values.{extra[0]}")
        shown: dict[str, str] = {}
        for name in wanted:
            value = values[name]
            if not isinstance(value, str | int):
                raise Invalid(f"{name} must be text or a whole number", field=f"values.{name}")
            plain = " ".join(str(value).split())  # one line: no newline or tab smuggled into the text
            if not plain:
                raise Invalid(f"{name} is empty", field=f"values.{name}")
            shown[name] = mask_name(plain) if _masked(name) else plain
        body = prefix + text.format_map(shown)
        check_one_sms(body)
        return Rendered(body, shown)

    def _text(self, key: str, language: str) -> str:
        try:
            return self._texts[language][key]
        except KeyError:
            raise Invalid(f"no SMS template {key!r}", field="template") from None
