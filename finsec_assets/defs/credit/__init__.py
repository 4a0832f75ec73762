"""Credit domain: real Altman inputs from XBRL, JumpStart's synthetic financials, the TabText dataset, rating models."""
