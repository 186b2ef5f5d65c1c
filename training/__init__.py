"""Fashion-MNIST DCGAN training: data, models, train loop, evaluation.

Run ``python -m training --help``.
"""
