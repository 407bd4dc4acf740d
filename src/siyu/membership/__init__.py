"""Membership (会员): points rules, the append-only points ledger with expiry, and tiers with history."""
