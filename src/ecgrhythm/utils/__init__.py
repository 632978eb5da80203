"""Shared helpers of every stage: atomic file writes (`io`), argument checks (`validation`), the machine a run is on (`machine`)."""
