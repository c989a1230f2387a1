"""The settings of each component, one module per group; ``sorte.config`` assembles them into
``Settings`` and is where every caller imports them from. Nothing here imports from the project
but ``sorte.errors``."""
