"""The seed's own serving path, kept as the baseline: Flask + a pyplot figure per request.

    python -m benchmarks.seed_flask --model-dir /tmp/m/1 --port 5000
    curl -o sheet.png http://127.0.0.1:5000/api/generar-diseno

As the seed: the generator is loaded once at start; every GET draws 9 noise vectors, runs the
generator, draws the 3x3 pyplot figure (imshow, cmap gray, axes off) and saves it as a PNG into a
BytesIO (``generar_muestra_ropa()``), served by Flask's threaded development server. The
generator is the published SavedModel's ``serving_default`` signature (the same artifact the
gateway serves), so the comparison measures the serving path, not a different model.
"""

from __future__ import annotations

import argparse
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import matplotlib

matplotlib.use("Agg")  # no display: render into memory

import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
from flask import Flask, Response

from fashion_core.contract import INPUT, OUTPUT, SIGNATURE

GENERATOR_SOURCE = "SavedModel signature serving_default (same version the gateway serves)"


def create_app(model_dir: str) -> Flask:
    """The seed's app: one route, the generator loaded once."""
    loaded = tf.saved_model.load(model_dir)
    generator = loaded.signatures[SIGNATURE]
    latent_dim = int(generator.structured_input_signature[1][INPUT].shape[-1])

    def generar_muestra_ropa() -> bytes:
        noise = tf.random.normal([9, latent_dim])
        images = generator(**{INPUT: noise})[OUTPUT].numpy()  # (9, 28, 28, 1) in [-1, 1]
        fig, axes = plt.subplots(3, 3)
        for i, ax in enumerate(np.ravel(axes)):
            ax.imshow(images[i, :, :, 0] * 127.5 + 127.5, cmap="gray")
            ax.axis("off")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    app = Flask(__name__)
    app.config["generator"] = loaded  # keep the SavedModel object alive with its signature

    def generar_diseno() -> Response:
        return Response(generar_muestra_ropa(), mimetype="image/png")

    app.add_url_rule("/api/generar-diseno", view_func=generar_diseno, methods=["GET"])

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", required=True, help="one version folder of the SavedModel")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args(argv)
    app = create_app(args.model_dir)
    app.run(host=args.host, port=args.port, threaded=True)  # as the seed: the dev server
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
