"""Contact cascades (issue 16): an alarm's responders called in order until one accepts by keypress."""
