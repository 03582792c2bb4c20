"""The daemon: what `twistd pxed` starts, and the service tree wiring every other package.

Nothing imports this package; it imports the rest.
"""
