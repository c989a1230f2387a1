"""Strategy modules and the cascade definition: the only code the agent may change."""
