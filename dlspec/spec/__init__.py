"""Spec loading: YAML with positions, schema and semantic validation, the typed Spec."""
