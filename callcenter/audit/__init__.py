"""The audit log: who did what to which resource (seed 4.2.4, 7.5)."""
