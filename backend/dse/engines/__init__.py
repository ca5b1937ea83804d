"""Analytical engines: plain numpy functions that broadcast over design points.

No I/O, no pydantic, no FastAPI, no database (checked by import-linter).
"""
