"""The devices' MQTT broker: which one the platform uses (its own Mosquitto, another broker, or none), the
platform-managed Mosquitto's files and process, and the devices' accounts on it."""
