"""The Telegram front end: a python-telegram-bot application that carries patient
messages to Rasa and replies back, enrols patients, and runs the check-ins."""
