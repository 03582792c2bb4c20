"""The `pxed` command: one module per sub-command, none of which starts the reactor."""
