"""The Asterisk runtime: installing it, rendering its configuration and running it."""
