"""Agents and supervisors at their phones: queue membership, pause, and their live state."""
