"""Predict: a saved model bundle and new images to ranked classes.

predict.predicting.predict(bundle, images) rebuilds the extractors from the bundle with
extract's reader and mapper and ranks the classes with the saved estimator, returning
the results; the CLI (predict.cli, also `python -m predict`) only parses and prints.
"""
