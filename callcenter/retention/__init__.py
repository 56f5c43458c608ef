"""Retention (seed 5.10): recordings kept at least 3 months, call logs at least 3 years, legal holds."""
