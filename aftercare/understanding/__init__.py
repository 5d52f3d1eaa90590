"""Reading a patient's message as a whole and sentence by sentence.

`sentences` splits a message into the sentences a patient meant (chat
punctuation, run-ons and line breaks included); `intent_model` is the intent
classifier that reads a long message both whole and per sentence, so a story
followed by a question is answered for its question. The Rasa component that
wraps it lives in nlu_components/.
"""
