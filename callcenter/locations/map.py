"""The panel's map (issue 15): the tile settings every page with a map gets in its config, and the elder's file's
map section. The drawing is the shared ``web/static/map.js`` (Leaflet); this domain says which tiles it draws on and
shows the elder's last position, track and fences with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from callcenter.config import Settings
from callcenter.contract import PageContent, PageRequest, PageSection, ServiceKey
from callcenter.locations import http

# What a page with a map loads before its own script (contract.Page.libraries).
MAP_LIBRARIES = ("leaflet.css", "leaflet.js", "map.js")


@dataclasses.dataclass(frozen=True, slots=True)
class MapTiles:
    """CC_MAP_TILE_URL, CC_MAP_TILE_COORDINATES and CC_MAP_TILE_ATTRIBUTION as a page's script gets them."""

    url: str  # empty: no tiles, a blank background
    coordinates: str  # "wgs84" or "gcj02": the tiles' datum (map.js shifts what it draws onto gcj02 tiles)
    attribution: str

    @classmethod
    def of(cls, settings: Settings) -> MapTiles:
        return cls(settings.map_tile_url, settings.map_tile_coordinates, settings.map_tile_attribution)

    def config(self) -> dict[str, Any]:
        """``config.map`` of a page (``CCMap.create(element, config.map)``)."""
        return {"tileUrl": self.url or None, "tileCoordinates": self.coordinates, "attribution": self.attribution}


MAP_TILES = ServiceKey("map_tiles", MapTiles)


async def elder_map_content(request: PageRequest) -> PageContent:
    """The map's tiles, and whether the user may draw and change the elder's geofences (the API's roles)."""
    may_edit = request.may(http.routes.roles_for("POST", "/elders/{id}/geofences"))
    return PageContent(values={"may_edit": may_edit},
                       config={"map": request.service(MAP_TILES).config(), "mayEdit": may_edit})


# The elder's file (/elders) shows where the elder is: for those the positions API lets read it.
ELDER_MAP = PageSection("elders", "elder_map", Path(__file__).parent, content=elder_map_content,
                        roles=http.routes.roles_for("GET", "/elders/{id}/positions"), libraries=MAP_LIBRARIES)
