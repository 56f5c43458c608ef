"""An elder's health record (issue 15; seed 5.4, 5.5, 5.11.2): examinations, follow-up visits, the doctor's notes,
the GB/T 42195-2022 capability assessment that sets the care level, and chronic-disease plans whose overdue visits
raise work orders. Not the platform's /healthz: that is ``callcenter.health``."""
