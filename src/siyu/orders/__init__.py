"""Orders and their lines, keyed by the shop's external id."""
