"""The aiohttp application: every domain's routes mounted on one app."""
