"""RedPajama-V2 quality signals (one module per signal family; later issues fill them in)."""
