"""The integration in Home Assistant's own test harness."""
