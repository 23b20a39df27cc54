"""The pure analysis core: tempo, transcription, text and audio features, genre head. No file I/O."""
