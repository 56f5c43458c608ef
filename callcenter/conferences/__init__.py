"""Emergency conferences: the elder, the agent, 120, the community doctor, relatives, the social worker."""
