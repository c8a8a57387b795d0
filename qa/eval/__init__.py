"""Evaluation: eval items and loading, metrics, gates, reports, XQuAD-derived benchmarks."""
