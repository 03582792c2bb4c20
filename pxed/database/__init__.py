"""PostgreSQL, when ``server.database`` names one: connections and the versioned schema.

The services that keep state there (DHCP leases today) import this package; it
imports none of them.  SQLite in ``server.state_dir`` stays the embedded default
and does not go through here.
"""
