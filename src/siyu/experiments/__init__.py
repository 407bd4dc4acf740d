"""Experiments (A/B tests): assignment, exposure and their analysis."""
