"""The release stage and the release folder: ``stage.release`` is the one entrance
(audit, gate, reports, SBOM and provenance, manifest.json, SHA256SUMS, signature), and
``publish`` the folder's one writer; ``assemble`` joins per-target folders through the
same entrance; ``verify`` checks a folder as a downloader would."""
