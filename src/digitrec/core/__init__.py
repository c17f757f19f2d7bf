"""Shared at the bottom: errors the CLI and the server map, atomic files and manifests, settings, hardware."""
