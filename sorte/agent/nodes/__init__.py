"""The agent's nodes, one module per stretch of a run: reading the message (receive, interpret,
answer), planning the change (recall, plan, optimise), making and checking it (edit, validate,
approve), shipping it (publish, deploy) and closing the run (learn, report).

Each node is ``async (state, ctx) -> update``: it reads the typed state, returns the fields it
changed, and reaches git, GitHub, the sandbox, the commander and the lesson store only through
the components that own them."""
