"""Time series for analysts: point and polygon extraction, and time-chunked store copies.

Cube and product stores are chunked one date per object (``(1, 512, 512)``), which suits
writing a date and reading a scene but makes one pixel's year read hundreds of objects.
`geoproc.timeseries.rechunk` writes a copy chunked along time; `points` and `zonal` read
either layout through the same code (`store.open_series_store`).
"""
