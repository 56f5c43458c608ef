"""Device and sensor alarms (issue 15): typed alarms beside the voice SOS, from intake to resolution."""
