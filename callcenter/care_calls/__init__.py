"""Proactive care calls (issue 16, seed 5.8): check-in and greeting schedules, the daily planner, care records,
a missed check-in's escalation, and the /care-calls page."""
