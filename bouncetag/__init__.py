"""bouncetag: BPM, vocal transcript and genre for every bounce, written into its tags."""

__version__ = "0.1.0"
