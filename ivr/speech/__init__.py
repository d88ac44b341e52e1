"""Offline speech input: grammars, endpointing, recognisers (pocketsphinx, vosk) and intent mapping."""
