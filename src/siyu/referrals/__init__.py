"""Referral campaigns (裂变): invite links and posters, the landing, rewards, agents and the KOC board."""
