"""Training the genre head: datasets, feature cache, training, evaluation and scheduling."""
