"""Serious adverse events: the site's initial and follow-up reports to the sponsor's safety
desk, their 24-hour clock, the SUSAR decision and the desk's e-mail notification."""
