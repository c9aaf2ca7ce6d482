"""The provider's web inbox: referrals sent to their organisation, accept or decline, outcome."""
