"""InTouch connector: Faust app, codecs, agents, tables, CLI and operations."""
