"""Quality figures for generators: a small Fashion-MNIST classifier (``classifier``), the
maths (``metrics``: FID, class coverage, nearest-image distance), the figures with their
real-data floors (``figures``) and a command line (``python -m evaluation``).

The figures are measured with a small CNN that the project trains once (about a minute on 2 CPU
cores) and keeps outside git at ``artifacts/fmnist_classifier.keras`` ($FASHION_GAN_CLASSIFIER);
every version is scored with the same file, so figures are comparable across versions:

- ``fid``: Fréchet distance between generated and test images in the classifier's 128-unit
  ``features`` layer (Inception features would need a download and 299x299 inputs).
- ``class_kl_to_uniform``: KL(predicted-class histogram || uniform); 0 = all ten classes equally
  often, log(10) = 2.303 = one class only (mode collapse). ``class_shares`` lists each class.
- ``nn_distance_mean`` / ``_median``: L2 distance in [-1, 1] pixel space from a generated image to
  its nearest training image; near 0 = the generator copies training images.

Each comes with a real floor (train subset vs test images), so a reader can tell "good" from "as
good as real data gets" with this classifier.
"""


class EvaluateError(Exception):
    """A version, model base path or classifier that cannot be used (message: one sentence)."""
