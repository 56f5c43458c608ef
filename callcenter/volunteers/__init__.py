"""Volunteers and volunteer teams (seed 5.11): training, certificates, review, service records, evaluations,
complaints and awards; a volunteer paired with an elder appears among the elder's contacts."""
