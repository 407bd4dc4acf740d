"""Acquisition channels (where customers come from, with their costs) and physical stores."""
