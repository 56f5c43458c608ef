"""Staff accounts and roles: admin, agent, supervisor, auditor, provider."""
