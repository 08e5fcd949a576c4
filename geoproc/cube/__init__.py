"""Time-series cubes: the contract, reading and assembling scenes, and the Zarr store."""
