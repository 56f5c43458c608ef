"""Benchmarks against a real stack (Asterisk 22, the platform process, SIPp). Run with `make bench`."""
