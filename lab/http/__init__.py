"""The hand-built REST layer on aiohttp's low-level server; see README.md."""
