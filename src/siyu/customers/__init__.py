"""The customer pool (流量池): one person per customer, their identities, consent and rollups."""
