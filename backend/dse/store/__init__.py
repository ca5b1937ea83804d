"""The scenario store."""
