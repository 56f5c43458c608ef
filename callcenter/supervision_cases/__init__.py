"""Supervision cases (督办, seed 6.6) at /supervision-cases: overdue orders, repeated complaints and dissatisfied
results are escalated automatically; urging the provider (a call or a platform message) and its result are recorded
and count in the provider's evaluation."""
