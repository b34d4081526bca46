"""Local stand-ins for the public APIs: real HTTP, documented contract, quirks included."""
