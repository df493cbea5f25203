"""Long-term statistics in a real recorder."""
