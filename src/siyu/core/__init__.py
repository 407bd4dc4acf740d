"""Shared infrastructure every domain builds on: settings, database, time, errors, domain events, audit.

Nothing in here imports a domain package; domains import from here.
"""
