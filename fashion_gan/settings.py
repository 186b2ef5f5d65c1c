"""What the seed's Python API reads from the environment, and nothing more: where versions
of both models are published, which labels exist, and where a training job runs when none
is. The names are the gateway's (its settings table takes these definitions), so a script and
a gateway on one machine agree; a gateway-only variable, even a malformed one, never breaks
the Python API. Unlike the gateway, the library does not refuse names it does not know (it
shares the GATEWAY_ prefix with a service it must not depend on): a misspelt variable is
ignored here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fashion_core.contract import COND_MODEL_NAME, MODEL_NAME, PROFILES
from fashion_core.envparse import Variable, choice, path, read, served_name, text, url

MODEL_BASE_PATH = Variable(
    "MODEL_BASE_PATH",
    "model_base_path",
    path,
    "version folders: the embedded model, train-on-miss output, and (rest/grpc, mounted "
    "read-only) what tells a fresh deployment from a model server that is loading",
)
MODEL_CONFIG_FILE = Variable(
    "MODEL_CONFIG_FILE",
    "model_config_file",
    path,
    "a TF Serving models.config whose labels the embedded backend honours",
)
MODEL_NAME_VAR = Variable("MODEL_NAME", "model_name", served_name, "the TF Serving model name")
COND_MODEL_NAME_VAR = Variable(
    "COND_MODEL_NAME",
    "cond_model_name",
    served_name,
    "the TF Serving name of the class-conditional model",
)
COND_MODEL_BASE_PATH = Variable(
    "COND_MODEL_BASE_PATH",
    "cond_model_base_path",
    path,
    "its version folders, as `MODEL_BASE_PATH` is the first model's (unset: "
    "`COND_MODEL_NAME` beside `MODEL_BASE_PATH`, e.g. `models/fashion_gan_cond`)",
)
TRAIN_PROFILE = Variable(
    "GATEWAY_TRAIN_PROFILE", "train_profile", choice(PROFILES), "profile of that job"
)
TRAINER_URL = Variable(
    "GATEWAY_TRAINER_URL",
    "trainer_url",
    url,
    "a trainer job runner (`python -m training.jobserver`) instead of a local subprocess",
)
JOBS_DIR = Variable(
    "GATEWAY_JOBS_DIR", "jobs_dir", path, "job state, log and run folder of local jobs"
)
ADMIN_TOKEN = Variable("GATEWAY_ADMIN_TOKEN", "admin_token", text, "enables `POST /api/training`")
VARIABLES = (
    MODEL_BASE_PATH,
    MODEL_CONFIG_FILE,
    MODEL_NAME_VAR,
    COND_MODEL_NAME_VAR,
    COND_MODEL_BASE_PATH,
    TRAIN_PROFILE,
    TRAINER_URL,
    JOBS_DIR,
    ADMIN_TOKEN,
)


@dataclass(frozen=True)
class ApiSettings:
    model_base_path: Path = Path("models/fashion_gan")
    model_config_file: Path | None = None
    model_name: str = MODEL_NAME
    cond_model_name: str = COND_MODEL_NAME
    cond_model_base_path: Path | None = None
    train_profile: str = "quick"
    trainer_url: str | None = None
    jobs_dir: Path = Path("runs/jobs")
    admin_token: str | None = None

    @property
    def cond_base_path(self) -> Path:
        """The conditional model's version folders (models/fashion_gan_cond by default)."""
        if self.cond_model_base_path is not None:
            return self.cond_model_base_path
        return self.model_base_path.parent / self.cond_model_name

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiSettings:
        return cls(**read(environ, VARIABLES))
