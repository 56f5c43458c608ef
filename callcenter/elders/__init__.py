"""Elders' files and their contacts (seed 5.11: elders' basic information)."""
