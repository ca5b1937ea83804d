"""Scenario documents: one schema per kind, evaluate, sweep."""
