"""Signed HTTP ingest of device messages for gateways and vendor clouds (issue 15)."""
