"""Custom actions for the Rasa assistant (run with `rasa run actions`)."""
