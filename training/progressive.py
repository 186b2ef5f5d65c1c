"""A training job that keeps improving: a first version as soon as it is presentable, then a
better one at each publish point, each only if the evaluator says it beats the version being
served, until the profile's time budget.

    python -m training --profile quick                      # 60 minutes, versions along the way
    python -m training --profile quick --set time_budget_s=1800

The schedule is in seconds of job time (``state["clock_s"]``: training, evaluating and
publishing, kept in state.json across resumes), checked at the end of every epoch (an epoch
of ``quick`` is a few seconds). At a publish point the EMA generator is a candidate:

- nothing is published yet: it is published (the first version, figures measured when the
  evaluator's classifier is already there);
- the classifier is not trained yet (a fresh machine): the candidates of the listed early
  points (``publish_at_s``) are published, and after the last of them the classifier is
  trained (once, cached) in a process beside the job, while the generator goes on training:
  it takes a quarter of an hour of the same 2 cores, and stopping for it would leave the
  early version served all that time. Later candidates wait for it (deferred, not published
  unjudged); the first one is judged as soon as it lands;
- otherwise the candidate is scored, and published only if its FID beats the served
  version's by ``fashion_core.quality.MARGIN`` (the rollout gate's comparison; the served
  version is scored anew when its card's figures are not comparable).

After each publish, old versions are pruned (the newest ``keep_versions`` and every version a
models.config names stay). The job's progress file says when the next candidate is due and
what the last gate decided; the gallery and ``GET /api/training`` show it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from export.zcategory import inner
from fashion_core.cards import read_card, training_section
from fashion_core.dataset import FashionMNIST
from fashion_core.progress import ProgressFile
from fashion_core.quality import MARGIN, compare, not_comparable
from fashion_core.versions import list_versions, version_dir
from training.companion import PENDING, Companion, Publish, publish_companion
from training.config import TrainConfig
from training.schedule import Schedule

Log = Callable[[str], None]
# (model name, base path, version just published, the run's state): make TF Serving load it
Follow = Callable[[str, Path, int, dict[str, Any]], None]


class ProgressiveJob:
    """The ``EpochDriver`` of ``training.train`` for a profile with a time budget."""

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        data: FashionMNIST,
        run_dir: Path,
        base_path: Path,
        classifier_path: Path,
        publish: Publish,
        prune: Callable[[], list[int]],
        log: Log,
        progress: ProgressFile,
        data_dir: Path | None = None,
        model_name: str = "",
        follow: Follow | None = None,
        companion: Companion | None = None,
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg, self.data, self.run_dir = cfg, data, run_dir
        self.base_path, self.classifier_path = base_path, classifier_path
        self.publish, self.prune, self.log, self.progress = publish, prune, log, progress
        self.data_dir, self.model_name = data_dir, model_name
        self.follow: Follow = follow or (lambda _model, _base, _version, _state: None)
        self.companion = companion
        # state.json written at once after each publish, not only at the end of the epoch: a
        # job killed while it publishes the second model must still know its first was out
        self.save = save or (lambda _state: None)
        if companion is not None:
            # said before the first step: a miss of that model waits for this job rather than
            # start one of its own (fashion_gan/jobs.py: publishes_too)
            progress.update(force=True, companion={"model": companion.model, "published": []})
        self.schedule = Schedule.of(cfg)
        self._evaluator: Any = None
        self._preparing: subprocess.Popen[bytes] | None = None  # the classifier's training
        self._prepare_tries = 0
        self._scored: dict[int, dict[str, Any]] = {}  # served versions scored by this job

    # --- EpochDriver ------------------------------------------------------------------------

    def finished(self, state: dict[str, Any]) -> bool:
        # only the flag: a job killed while judging its last candidate (the clock already past
        # the budget, "finished" not yet written) trains one more epoch and judges it again
        return bool(state.get("finished"))

    def after_epoch(self, epochs_done: int, generator: keras.Model, state: dict[str, Any]) -> bool:
        clock = float(state.get("clock_s", 0.0))
        last = float(state.get("last_candidate_s", -1.0))
        every = self.cfg.publish_every_epochs
        last_epoch = epochs_done >= self.cfg.epochs  # the epoch cap ends the run too
        deferred = bool(state.get("deferred"))
        if deferred and not self.classifier_path.is_file():
            self._start_evaluator()  # after a resume, or a try that failed
        arrived = deferred and self.classifier_path.is_file()  # judge the waiting candidate
        due = self.schedule.due(last, clock) or (every and epochs_done % every == 0)
        if due or arrived or last_epoch:
            started = time.perf_counter()
            self._candidate(generator, state)
            state["last_candidate_s"] = clock
            state["clock_s"] = round(clock + time.perf_counter() - started, 3)
        stop = state["clock_s"] >= self.schedule.budget_s or last_epoch
        if stop:
            state["finished"] = True
            published = state.get("published_versions", [])
            self.log(
                f"Trabajo terminado a los {state['clock_s']:.0f}s de {self.schedule.budget_s:.0f}s"
                f" y {epochs_done} épocas: {len(published)} versiones publicadas {published}."
            )
        self.report(state)
        return bool(stop)

    # --- one candidate ----------------------------------------------------------------------

    def _candidate(self, generator: keras.Model, state: dict[str, Any]) -> None:
        from training.parts import float32_generator

        versions = list_versions(self.base_path)
        served = versions[-1] if versions else None
        ours = served in state.get("published_versions", [])
        if served is not None and not ours and not self.classifier_path.is_file():
            # never publish unjudged over a version this job did not make (a `default` model
            # trained for an hour, say): the evaluator is trained first
            self._train_evaluator()
        have_evaluator = self.classifier_path.is_file()
        clock = float(state.get("clock_s", 0.0))
        early = float(state.get("last_candidate_s", -1.0)) < self.schedule.early_until
        entry: dict[str, Any] = {"clock_s": round(clock, 1), "epochs": state["completed_epochs"]}
        quality: dict[str, Any]
        if served is not None and not have_evaluator and not early:
            self._start_evaluator()
            entry["verdict"] = "deferred: the evaluator's classifier is still being trained"
            state["deferred"] = True
            state.setdefault("candidates", []).append(entry)
            self._companion_if_none(generator, state)
            self.progress.update(force=True, phase="training")
            return
        state.pop("deferred", None)
        if served is None or not have_evaluator:
            self.progress.update(force=True, phase="evaluating")
            quality = self._figures(generator) if have_evaluator else {"pending": PENDING}
            entry["verdict"] = "first version" if served is None else "ungated: no evaluator yet"
            publish = True
        else:
            self.progress.update(force=True, phase="evaluating")
            try:
                quality = self._figures(generator)
                served_quality = self._served_figures(served)
            except Exception as exc:
                # a diverged generator (NaN pixels), a served version that does not load: the
                # candidate is refused and the job goes on to the next one
                quality, served_quality = {}, {}
                entry["verdict"] = f"not judged: {type(exc).__name__}: {exc}"[:300]
                publish = False
                self.log(f"Candidata a los {clock:.0f}s sin juzgar: {entry['verdict']}.")
            else:
                result = compare(quality, served_quality, MARGIN)
                entry.update(served=served, served_fid=served_quality.get("fid"))
                entry["verdict"] = result.reason
                publish = result.better
                self.log(
                    f"Candidata a los {clock:.0f}s contra la versión servida {served}: "
                    f"{result.reason}."
                )
        entry["fid"] = quality.get("fid")
        state.setdefault("candidates", []).append(entry)  # its version, if any, follows
        if publish:
            self.progress.update(force=True, phase="publishing")
            training = {**training_section(state, self.run_dir), "clock_s": round(clock, 1)}
            version = self.publish(float32_generator(generator, self.cfg), quality, training)
            entry["version"] = version
            state.setdefault("published_versions", []).append(version)
            state["published_version"] = version
            self.save(state)
            self.follow(self.model_name, self.base_path, version, state)
            if self.companion is not None:
                self._publish_companion(self.companion, generator, training, state)
            try:
                self.prune()
                if self.companion is not None:
                    self.companion.prune()
            except OSError as exc:  # the version is out; a leftover old one costs only disk
                self.log(f"No se pudieron retirar versiones antiguas: {exc}.")
        else:
            self._companion_if_none(generator, state)
        if not self.classifier_path.is_file() and clock >= self.schedule.early_until:
            self._start_evaluator()
        self.progress.update(force=True, phase="training")

    def _companion_if_none(self, generator: keras.Model, state: dict[str, Any]) -> None:
        """The second model's first version, whatever the first model's gate said: a job that
        runs beside a first model it does not beat (a POST /api/training over an hour-long
        `default` version) must still give the second model a version, since its misses wait
        for this job."""
        if self.companion is None or list_versions(self.companion.base_path):
            return
        clock = round(float(state.get("clock_s", 0.0)), 1)
        training = {**training_section(state, self.run_dir), "clock_s": clock}
        self._publish_companion(self.companion, generator, training, state)

    def _publish_companion(
        self,
        companion: Companion,
        generator: keras.Model,
        training: dict[str, Any],
        state: dict[str, Any],
    ) -> None:
        """The accepted candidate as the class-conditional model too (training/companion.py)."""
        from training.parts import float32_generator

        net = inner(float32_generator(generator, self.cfg))
        self.progress.update(force=True, phase="publishing")
        measure = self._by_category if self.classifier_path.is_file() else None
        version = publish_companion(companion, net, training, state, measure, self.log)
        if version is None:
            return
        self.save(state)
        self.follow(companion.model, companion.base_path, version, state)
        ours = state["companion_versions"]
        self.progress.update(force=True, companion={"model": companion.model, "published": ours})

    def _by_category(self, generator: keras.Model) -> dict[str, Any]:
        """A conditional generator's figures, per category too, as export.release measures."""

        def by_category(z: np.ndarray, categories: np.ndarray) -> np.ndarray:
            return np.asarray(generator([z, categories.astype(np.int32)], training=False))

        figures = self.evaluator().figures_by_category(
            by_category, self.cfg.eval_samples, 0, self.cfg.latent_dim
        )
        return {**figures, "classifier": self.classifier_path.name}

    def _figures(self, generator: keras.Model) -> dict[str, Any]:
        from training.parts import served

        figures: dict[str, Any]
        generator = served(generator, self.cfg)  # scored as it will be served
        if self.cfg.conditional:
            return self._by_category(generator)

        def generate(z: np.ndarray) -> np.ndarray:
            return np.asarray(generator(z, training=False))

        figures = self.evaluator().figures(
            generate, self.cfg.eval_samples, latent_dim=self.cfg.latent_dim
        )
        return {**figures, "classifier": self.classifier_path.name}

    def _served_figures(self, version: int) -> dict[str, Any]:
        """The served version's card figures when they compare with a fresh measurement's,
        else the version scored now (published before the evaluator existed, or by another)."""
        folder = version_dir(self.base_path, version)
        card = dict(read_card(folder).get("quality", {}))
        probe = {"fid": 0.0, "samples": self.cfg.eval_samples, "evaluator": self._evaluator_id()}
        if not_comparable(probe, card) is None:
            return card
        if version not in self._scored:  # once per version and job, not at every candidate
            self.log(f"Midiendo la versión servida {version} con el evaluador actual.")
            self._scored[version] = self.evaluator().figures_for_version(
                folder, self.cfg.eval_samples
            )
        return self._scored[version]

    @staticmethod
    def _evaluator_id() -> str:
        from evaluation.classifier import EVALUATOR

        return EVALUATOR

    def evaluator(self) -> Any:
        """The evaluator, loaded once per job (its real-data statistics are computed once)."""
        if self._evaluator is None:
            from evaluation.classifier import load_or_train_classifier
            from evaluation.figures import Evaluator

            classifier = load_or_train_classifier(self.classifier_path, self.data, log=self.log)
            self._evaluator = Evaluator(self.data, classifier)
        return self._evaluator

    def _start_evaluator(self) -> None:
        """Train the classifier in a process beside this one (``python -m evaluation.classifier``),
        unless one runs; after a failed try, again, twice at most (its log: the run folder)."""
        if self._preparing is not None and self._preparing.poll() is None:
            return
        if self._prepare_tries >= 3:
            return
        self._prepare_tries += 1
        command = [
            sys.executable,
            "-m",
            "evaluation.classifier",
            "--path",
            str(self.classifier_path),
        ]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "classifier.log", "ab") as out:
            self._preparing = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.log("Entrenando el clasificador del evaluador junto al generador (una sola vez).")

    def _train_evaluator(self) -> None:
        self.log("Entrenando el clasificador del evaluador (una sola vez en esta máquina).")
        self.progress.update(force=True, phase="preparing the evaluator")
        self.evaluator()

    # --- progress as data -------------------------------------------------------------------

    def report(self, state: dict[str, Any]) -> None:
        clock = float(state.get("clock_s", 0.0))
        nxt = None if state.get("finished") else self.schedule.next_point(clock)
        published = list(state.get("published_versions", []))
        self.progress.update(
            force=True,
            clock_s=round(clock, 1),
            budget_s=self.schedule.budget_s,
            improving=not state.get("finished"),
            # wall-clock estimate: job seconds pass at about the wall clock's rate
            next_candidate_at=None if nxt is None else round(time.time() + nxt - clock, 1),
            published=published,
            version=published[-1] if published else None,
            last_candidate=(state.get("candidates") or [None])[-1],
        )
        if self.companion is not None:
            mine = list(state.get("companion_versions", []))
            self.progress.update(companion={"model": self.companion.model, "published": mine})
