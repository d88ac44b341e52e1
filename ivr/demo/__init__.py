"""The demo's stand-ins for your systems: the reference backend and the SMS sink (demo only)."""
