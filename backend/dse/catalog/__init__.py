"""Loads models_db/ into typed, frozen specs, with their sources."""

from dse.catalog.loader import Catalog, CatalogError, UnknownPreset, default_catalog, load_catalog

__all__ = ["Catalog", "CatalogError", "UnknownPreset", "default_catalog", "load_catalog"]
