"""The audit trail: who did what, when, on which referral and step."""
