"""Work orders and their event trail (seed 4.2.4: every closed-loop step leaves a trace)."""
