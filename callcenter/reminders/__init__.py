"""Reminders (issue 16): medication times, a missing measurement of a chronic-disease plan and a visit tomorrow,
called through the outbound engine and sent by SMS through the notifications service."""
