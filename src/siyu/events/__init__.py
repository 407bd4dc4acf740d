"""Behavioural events of customers (visits, scans, clicks, opens …) with their properties and source."""
