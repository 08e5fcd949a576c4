"""What develops or demonstrates geoproc (sample archive, local stack, STAC test server, benchmarks, synthetic cubes), kept apart from the pipeline."""
