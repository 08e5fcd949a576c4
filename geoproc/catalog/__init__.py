"""STAC catalogs: search, sensor/provider profiles and items for local files."""
