"""The dependency rule, read from the source: telephony ← domains ← platform.

* The transport layer (``callcenter.telephony``) imports no domain and nothing above it.
* A domain (a package with a ``plugin.py``) never imports the web layer or the platform: it declares its pages,
  routes and jobs in its plugin, and the platform wires them.
* Every domain is listed in ``callcenter.plugins.PLUGINS`` once, and every table belongs to a plugin.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import callcenter
from callcenter.plugins import PLUGINS, metadata

ROOT = Path(callcenter.__file__).parent
TRANSPORT = "callcenter.telephony"
# What the transport layer may use besides itself: logging and settings, nothing with a domain in it.
TRANSPORT_MAY_IMPORT = ("callcenter.telephony", "callcenter.logs", "callcenter.config")
ABOVE_THE_DOMAINS = ("callcenter.web", "callcenter.platform", "callcenter.plugins", "callcenter.cli",
                     "callcenter.demo")
DOMAINS = sorted(path.parent.name for path in ROOT.glob("*/plugin.py"))


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (at any depth: a function-level import counts too), with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from callcenter import web` imports callcenter.web
                yield node.lineno, f"{node.module}.{alias.name}"


def modules_under(package: str) -> list[Path]:
    return sorted((ROOT / package.removeprefix("callcenter.").replace(".", "/")).rglob("*.py"))


def _is(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_there_are_domains_to_check() -> None:
    assert len(DOMAINS) >= 15, DOMAINS


def test_the_transport_layer_imports_no_domain() -> None:
    offences = [f"{path.relative_to(ROOT.parent)}:{line} imports {module}"
                for path in modules_under(TRANSPORT) for line, module in imports_of(path)
                if _is(module, "callcenter") and module != "callcenter"
                and not any(_is(module, allowed) for allowed in TRANSPORT_MAY_IMPORT)]
    assert not offences, "\n".join(offences)


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_never_imports_the_web_layer_or_the_platform(domain: str) -> None:
    offences = [f"{path.relative_to(ROOT.parent)}:{line} imports {module}"
                for path in modules_under(f"callcenter.{domain}") for line, module in imports_of(path)
                if any(_is(module, above) for above in ABOVE_THE_DOMAINS)]
    assert not offences, "\n".join(offences)


def test_the_rule_catches_what_it_must(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import callcenter.web.pages\nfrom callcenter import platform\n"
                      "def f():\n    from callcenter.web.app import create_app\n", encoding="utf-8")
    found = {module for _, module in imports_of(sample)}
    assert {"callcenter.web.pages", "callcenter.platform", "callcenter.web.app"} <= found


def test_every_domain_is_a_listed_plugin_once() -> None:
    listed = [plugin.load.__module__ for plugin in PLUGINS]
    assert len(listed) == len(set(listed)), listed
    assert sorted(module.split(".")[1] for module in listed) == DOMAINS
    assert len({plugin.name for plugin in PLUGINS}) == len(PLUGINS)


def test_every_table_belongs_to_a_plugin() -> None:
    declared = {model.__table__.name for plugin in PLUGINS for model in plugin.models}
    assert declared == set(metadata().tables)
