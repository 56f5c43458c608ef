"""Platform health and system management."""
