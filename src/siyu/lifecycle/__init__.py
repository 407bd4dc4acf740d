"""Lifecycle stages (lead → new → active → loyal → dormant 沉睡 → churned, and reactivated), with every
transition kept in a history."""
