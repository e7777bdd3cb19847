"""A reference club-management platform served over real HTTP for demo, tests and benchmarks."""
