"""Release files in dist/: artifacts, SHA256SUMS, manifest.json."""
