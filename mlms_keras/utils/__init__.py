"""Helpers every stage uses: atomic files, provenance, versioned JSON."""
