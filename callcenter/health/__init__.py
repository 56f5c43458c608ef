"""Is the platform fit to take an SOS: /healthz (live and ready), the status page, disk-space watch."""
