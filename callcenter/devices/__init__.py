"""Elders' terminals: one-touch phones, pendants, watches, health monitors."""
