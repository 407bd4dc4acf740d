"""Segments: a rule language over the customer pool (text and JSON forms), compiled to SQL, and saved segments."""
