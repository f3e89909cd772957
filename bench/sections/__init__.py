"""The benchmark sections, one module each: `bench_<name>(ctx, sizes) -> dict`."""
