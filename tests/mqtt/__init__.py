"""The MQTT publisher against a real Mosquitto."""
