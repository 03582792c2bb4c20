"""Where services keep durable state: PostgreSQL when ``server.database`` names one
(connections, the versioned schema, the worker thread), else an SQLite file in
``server.state_dir`` written in batches (``sqlite``).

The services that keep state here (DHCP and DHCPv6 leases, host states) import this
package; it imports none of them.
"""
