"""Where elders are: device positions and geofences (issue 15, seed 5.2)."""
