"""The wire layer: signing, XML, and the aiohttp client for CI and COS."""
