"""`pawhub bench flood`: a legitimate room's acks and /healthz while one client floods the hub."""
