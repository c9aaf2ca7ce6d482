"""Referrals: the case a caseworker moves through a pathway, its answers and its status."""
