"""The agent desk's live channel: one authenticated WebSocket per browser, screen-pops and state pushes."""
