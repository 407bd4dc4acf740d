"""siyu (私域): one trustworthy customer pool for a brand's owned channels.

Domains live in subpackages (customers, orders, events, channels, ingest, auth, …); see docs/architecture.md.
"""

__version__ = "0.1.0"
