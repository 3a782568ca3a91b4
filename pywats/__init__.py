"""pywats: a WATS test-station client.

Watches result folders, converts files to WATS reports (WSJF), keeps them in a durable
SQLite queue and uploads them to the WATS REST API.
"""

__version__ = "0.1.0"
