"""The outbound engine (issue 16): one dialer for every call the centre places by itself — contact cascades,
help-is-coming messages, care calls, reminders and call-backs."""
