"""What callers hear: the prompt catalogue and cache, TTS, audio conversion, recordings."""
