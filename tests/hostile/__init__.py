"""Hostile input: stored markup, generated import files, the API fuzzed from its OpenAPI spec."""
