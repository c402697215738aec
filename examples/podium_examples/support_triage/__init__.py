"""Customer-support triage on BANKING77: classify, draft, send or escalate to a person, all governed."""
