"""Benchmarks of Pathways against bare-stack baselines: see bench/README.md."""
