"""JSON Schemas of mixedbridge's documents (spec, results), shipped as package data."""
