"""Evaluation: measures over trial outcomes (DySQL-Bench's Pass^k, the cross-domain study's DSR, TCA and STC),
structural alignment of SQL workloads, and frozen task sets imported from benchmarks."""
