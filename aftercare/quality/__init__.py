"""What each trained model does, measured and kept: issue 11's "see the effect".

- archive.py: which model this is (a hash of the archive, its training time)
  and the intent classifier inside it.
- training.py: the training examples (data/nlu), counts per intent, the
  intents with too few examples, and whether the model was trained on them.
- crossval.py: k-fold cross-validation of the intent classifier on the
  training data (scikit-learn only, the folds in worker processes): the
  confusion matrix and the most confused pairs of intents.
- report.py: one quality report for a model: the measuring sets and the
  cross-validation, as one JSON-ready dict.
- history.py: the reports kept one file per model (results/quality/), read
  back for `aftercare evaluate --history` and the authoring page.

review/plots.py draws the figures as SVG for the page.
"""
