"""Tests of openusage-ha: the core, hostile input, the Home Assistant integration, MQTT and the recorder."""
