"""Shared ground of the REST API v1: bearer tokens, the route registry (the one source of the OpenAPI document),
request parsing, error mapping. Each domain keeps its own ``schemas.py`` / ``services.py`` / ``http.py``."""
