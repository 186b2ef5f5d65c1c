"""Quality figures for generators: a Fashion-MNIST classifier (``classifier``), the maths
(``metrics``: FID, precision and recall, class coverage, nearest-image distance), the figures
with their real-data floors (``figures``) and a command line (``python -m evaluation``).

The figures are measured with a CNN whose first two convolutions keep the full 28x28 (so blur,
smears and speckle change its features), which the project trains once (about 10 minutes on 2
CPU cores, 93% test accuracy) and keeps outside git at ``artifacts/fmnist_classifier_v2.keras``
($FASHION_GAN_CLASSIFIER); every version is scored with the same file, so figures are
comparable across versions, and every figure set names its evaluator (``EVALUATOR``). The
validation that this evaluator sees what a person sees is ``python -m benchmarks.evaluator``
(docs/benchmarks.md). The discriminator never uses this network: a metric the generator is
trained against stops measuring anything.

- ``fid``: Fréchet distance between generated and test images in the classifier's 128-unit
  ``features`` layer (Inception features would need a download and 299x299 inputs).
- ``precision`` / ``recall``: improved precision and recall (Kynkäänniemi et al. 2019) in the
  same features: the share of designs that fall among real images (fidelity), and the share
  of real images that the designs' variety reaches (diversity).
- ``class_kl_to_uniform``: KL(predicted-class histogram || uniform); 0 = all ten classes equally
  often, log(10) = 2.303 = one class only (mode collapse). ``class_shares`` lists each class.
- ``nn_distance_mean`` / ``_median``: L2 distance in [-1, 1] pixel space from a generated image to
  its nearest training image; near 0 = the generator copies training images.

Each comes with a real floor (train subset vs test images), so a reader can tell "good" from "as
good as real data gets" with this classifier.
"""


class EvaluateError(Exception):
    """A version, model base path or classifier that cannot be used (message: one sentence)."""
