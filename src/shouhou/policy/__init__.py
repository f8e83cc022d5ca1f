"""Rulebooks as data: strict schema, YAML packs with provenance, resolution of rules in force."""
