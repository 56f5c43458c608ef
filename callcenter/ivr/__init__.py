"""Interactive voice response: menus as data (``ivr_flows/``), their prompts, and the AGI interpreter."""
