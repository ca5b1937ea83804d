"""Typed, frozen specs of models and hardware.

Plain dataclasses, free of pydantic and I/O, so the engines can take them. The catalog
validates preset files into these with pydantic's TypeAdapter. Every numeric field is in
SI units and its name says which.
"""
