"""The pages' scripts and stylesheets under ``/static/<file>``, wherever each lives.

A page's files sit in its domain package (``<package>/static/``), the shared ones (``common.js``, ``panel.css``) in
this package's. aiohttp serves one directory per static prefix, so one handler serves them all under the one
prefix from a table of file name to path, built from the declared pages when the application is built. Links
carry ``?v=<sha256 of the content>`` as aiohttp's ``append_version`` did, so a changed file is never taken from a
browser's cache.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from aiohttp import web
from yarl import URL

from callcenter.contract import Page, PageSection

SHARED_DIRECTORY = Path(__file__).parent / "static"
VENDOR_DIRECTORY = SHARED_DIRECTORY / "vendor"  # browser libraries from npm (`make vendor`), served by file name
PREFIX = "/static/"


@dataclasses.dataclass(frozen=True, slots=True)
class StaticFiles:
    files: Mapping[str, Path]  # file name -> where it is
    # name -> (mtime_ns, size, version): a file is hashed again only when it changed, not on every page rendered
    # (reading and hashing every script on every page load blocked the event loop for nothing).
    _versions: dict[str, tuple[int, int, str]] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, pages: Iterable[Page | PageSection]) -> StaticFiles:
        """The shared files and every page's (and page section's) own; two files of one name would shadow one
        another, and a library a page names that is not a shared file would break its script: both stop the platform
        here."""
        shared = [*sorted(SHARED_DIRECTORY.iterdir()), *sorted(VENDOR_DIRECTORY.iterdir())]
        files = {path.name: path for path in shared if path.is_file()}
        shared_names = set(files)
        pages = tuple(pages)  # read twice
        for page in pages:
            for name in page.files():
                path = page.directory / "static" / name
                if not path.is_file():
                    raise FileNotFoundError(f"page {page.path}: {path} is missing")
                if files.get(name, path) != path:
                    raise ValueError(f"page {page.path}: {name} is both {files[name]} and {path}")
                files[name] = path
        for page in pages:  # the shared libraries it names must be shared files
            missing = [name for name in page.libraries if name not in shared_names]
            if missing:
                raise FileNotFoundError(f"page {page.path}: no shared file {', '.join(missing)} in web/static")
        return cls(MappingProxyType(files))

    def url(self, name: str) -> str:
        """The file's link, versioned by its content (an edited file gets a new link at once)."""
        path = self.files[name]
        stat = path.stat()
        known = self._versions.get(name)
        if known is None or known[:2] != (stat.st_mtime_ns, stat.st_size):
            digest = hashlib.sha256(path.read_bytes()).digest()
            known = (stat.st_mtime_ns, stat.st_size, base64.urlsafe_b64encode(digest).decode("ascii"))
            self._versions[name] = known
        return str(URL(PREFIX + name).with_query(v=known[2]))

    async def serve(self, request: web.Request) -> web.StreamResponse:
        path = self.files.get(request.match_info["filename"])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    def register(self, app: web.Application) -> None:
        app.router.add_get(PREFIX + "{filename}", self.serve)
