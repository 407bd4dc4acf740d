"""Users, their role in each workspace, password login and API tokens."""
