"""Trial analysis: survival, safety, resources and the report, from a trial dataset."""
