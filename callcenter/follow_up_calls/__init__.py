"""One-click follow-up calls (回访) at POST /work-orders/{id}/follow-up-call: the agent's phone rung, then the
elder dialled; outcomes on the order's trail."""
