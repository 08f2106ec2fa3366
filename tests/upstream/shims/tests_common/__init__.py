"""Stand-in package for the official provider's tests (see tests/upstream/README.md)."""
