"""Health readings (blood pressure, heart rate, SpO2, glucose, temperature, weight, steps) and their thresholds."""
