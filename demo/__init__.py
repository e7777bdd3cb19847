"""Demo and test tooling: seeded scenarios, the generator, the oracle and `connector demo`."""
