"""FastAGI: sans-IO protocol, asyncio server, and the Channel it implements."""
