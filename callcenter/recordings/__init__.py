"""Call and conference recordings (seed 5.10: kept at least 3 months)."""
