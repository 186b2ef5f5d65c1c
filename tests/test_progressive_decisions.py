"""The progressive job's decisions that a whole job rarely meets: a candidate that cannot be
scored, a served version the job did not make while no evaluator exists yet, a job killed while
judging its last candidate, ``--no-publish``. The evaluator is replaced by a subclass that raises
or records (its figures are tested in test_evaluate.py); everything else is the real job."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from fashion_core.dataset import FashionMNIST
from fashion_core.progress import ProgressFile
from training.config import make_config
from training.progressive import ProgressiveJob
from training.schedule import BudgetOnly

SETS = [
    "epochs=1000",
    "time_budget_s=100",
    "publish_at_s=10,30",
    "publish_every_s=25",
    "width=0.25",
]


class Job(ProgressiveJob):
    def __init__(self, tmp: Path, figures: Any) -> None:
        self.published: list[int] = []
        self.trained_evaluator = 0
        self._fake_figures = figures

        def publish(_g: Any, _q: dict[str, Any], _t: dict[str, Any]) -> int:
            version = 7 + len(self.published)
            (tmp / "base" / str(version)).mkdir(parents=True)
            self.published.append(version)
            return version

        super().__init__(
            make_config("smoke", SETS),
            data=cast(FashionMNIST, None),  # only the evaluator reads it, replaced here
            run_dir=tmp / "run",
            base_path=tmp / "base",
            classifier_path=tmp / "clf.keras",
            publish=publish,
            prune=lambda: [],
            log=lambda _line: None,
            progress=ProgressFile(None),
        )

    def _figures(self, generator: Any) -> dict[str, Any]:
        if isinstance(self._fake_figures, Exception):
            raise self._fake_figures
        return dict(self._fake_figures)

    def _served_figures(self, version: int) -> dict[str, Any]:
        return {"fid": 50.0, "samples": 256, "evaluator": self._evaluator_id()}

    def _train_evaluator(self) -> None:  # in this process: the job waits for it
        self.trained_evaluator += 1
        self.classifier_path.write_bytes(b"trained")

    def _start_evaluator(self) -> None:  # beside the job: it lands later (the test says when)
        self.started_evaluator = getattr(self, "started_evaluator", 0) + 1


@pytest.fixture(scope="module")
def generator() -> Any:
    from training.model import build_generator

    return build_generator(100, 0.25)


def test_a_candidate_that_cannot_be_scored_is_refused_and_the_job_goes_on(
    tmp_path: Path, generator: Any
) -> None:
    (tmp_path / "base" / "1").mkdir(parents=True)
    (tmp_path / "clf.keras").write_bytes(b"x")
    job = Job(tmp_path, ValueError("the generator returned NaN or Inf pixels"))
    state: dict[str, Any] = {"clock_s": 12.0, "completed_epochs": 3, "published_versions": [1]}
    job._candidate(generator, state)
    assert job.published == [] and state["candidates"][-1]["verdict"].startswith("not judged")
    assert "NaN" in state["candidates"][-1]["verdict"]


def test_never_unjudged_over_a_version_the_job_did_not_make(tmp_path: Path, generator: Any) -> None:
    (tmp_path / "base" / "3").mkdir(parents=True)  # a version published by someone else
    good = {"fid": 20.0, "samples": 256, "evaluator": "fmnist-fullres-v2"}
    job = Job(tmp_path, good)
    state: dict[str, Any] = {"clock_s": 12.0, "completed_epochs": 3}
    job._candidate(generator, state)
    assert job.trained_evaluator == 1  # judged, not waved through
    assert "better" in state["candidates"][-1]["verdict"] and job.published == [7]
    # its own early versions, on a fresh machine: published without waiting for the evaluator
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    job = Job(fresh, good)
    state = {"clock_s": 12.0, "completed_epochs": 3}
    job._candidate(generator, state)
    state["last_candidate_s"] = 12.0
    assert job.published == [7] and job.trained_evaluator == 0  # 12 s < the last early point
    state["clock_s"] = 31.0
    job._candidate(generator, state)  # the last early point: published, the classifier started
    state["last_candidate_s"] = 31.0
    assert job.published == [7, 8] and job.started_evaluator == 1 and job.trained_evaluator == 0
    # the next point comes before the classifier: deferred, not published unjudged
    state["clock_s"] = 56.0
    assert not job.after_epoch(5, generator, state)
    assert job.published == [7, 8] and state["candidates"][-1]["verdict"].startswith("deferred")
    assert state["deferred"] and job.started_evaluator >= 1
    # an epoch later the classifier has landed: the waiting candidate is judged at once
    (fresh / "clf.keras").write_bytes(b"trained")
    state["clock_s"] = 58.0
    assert not job.after_epoch(6, generator, state)
    assert "better" in state["candidates"][-1]["verdict"] and job.published == [7, 8, 9]
    assert "deferred" not in state and job.trained_evaluator == 0


def test_a_job_killed_while_judging_its_last_candidate_judges_it_again(tmp_path: Path) -> None:
    job = Job(tmp_path, {})
    assert not job.finished({"clock_s": 150.0})  # past the budget, never marked finished
    assert job.finished({"clock_s": 150.0, "finished": True})


def test_no_publish_trains_to_the_budget_only() -> None:
    driver = BudgetOnly(make_config("smoke", SETS))
    state: dict[str, Any] = {"clock_s": 99.0}
    assert not driver.after_epoch(1, None, state) and not driver.finished(state)
    state["clock_s"] = 100.0
    assert driver.after_epoch(2, None, state) and driver.finished(state)


def test_the_classifier_command_the_job_runs_beside_itself(
    classifier_path: Path, data_dir: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    ok = subprocess.run(
        [sys.executable, "-m", "evaluation.classifier", "--path", str(classifier_path),
         "--data-dir", str(data_dir)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ok.returncode == 0 and "Loaded classifier" in ok.stdout, ok.stderr[-1000:]
    bad = subprocess.run(
        [sys.executable, "-m", "evaluation.classifier", "--path", str(tmp_path / "c.keras"),
         "--data-dir", str(tmp_path / "nowhere")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "c.keras").exists()


def test_a_job_that_publishes_the_conditional_model_too_says_so_before_training(
    tmp_path: Path,
) -> None:
    """The gateway's miss of the conditional model waits for a job whose progress names it as
    its companion, and starts one of its own otherwise: the job must say so before its first
    step, or a category asked meanwhile starts a second job (it did, in a fresh make run)."""
    from fashion_core import progress as progress_file
    from fashion_gan.jobs import publishes_too
    from training.companion import Companion

    path = tmp_path / "progress.json"
    progress = ProgressFile(path)
    ProgressiveJob(
        make_config("quick"), data=cast(FashionMNIST, None), run_dir=tmp_path / "run",
        base_path=tmp_path / "base", classifier_path=tmp_path / "clf.keras",
        publish=lambda *_: 1, prune=list, log=lambda _line: None, progress=progress,
        companion=Companion("fashion_gan_cond", tmp_path / "cond", lambda *_: 1, list),
    )  # fmt: skip
    progress.update(force=True, phase="training")  # what train() writes next
    written = progress_file.read(path)
    assert written.companion == {"model": "fashion_gan_cond", "published": []}
    job = {"state": "running", "phase": written.phase, "companion": written.companion}
    assert publishes_too(job, "fashion_gan_cond")
    assert not publishes_too({**job, "companion": None}, "fashion_gan_cond")
    assert publishes_too({"state": "running", "phase": "starting"}, "fashion_gan_cond")
    assert not publishes_too({**job, "state": "succeeded"}, "fashion_gan_cond")


class CompanionJob(Job):
    """``Job`` with ``quick``'s conditional networks behind the first model, publishing the
    class-conditional model too through ``cond_publish``."""

    def __init__(self, tmp: Path, figures: Any, cond_publish: Any) -> None:
        from training.companion import Companion

        super().__init__(tmp, figures)
        self.cfg = make_config("smoke", [*SETS, "category_from_z=true"])
        self.lines: list[str] = []
        self.log = self.lines.append
        self.companion = Companion("fashion_gan_cond", tmp / "cond", cond_publish, list)

    def _by_category(self, generator: Any) -> dict[str, Any]:
        return {"fid": 81.0}  # the second model's card: any figures do here


@pytest.fixture(scope="module")
def cond_generator() -> Any:
    from training.model import build_generator

    return build_generator(100, 0.25, num_classes=10)


def test_the_second_model_failing_never_stops_the_first(
    tmp_path: Path, cond_generator: Any
) -> None:
    def broken(*_: Any) -> int:
        raise RuntimeError("the second folder is full")

    job = CompanionJob(tmp_path, {}, broken)
    state: dict[str, Any] = {"clock_s": 12.0, "completed_epochs": 3}
    job._candidate(cond_generator, state)  # the first version: published, then the second fails
    assert job.published == [7] and state["published_versions"] == [7]
    assert state["companion_versions"] == []
    assert any("No se pudo publicar fashion_gan_cond: RuntimeError" in x for x in job.lines)


def test_the_second_model_gets_a_first_version_whatever_the_first_gate_says(
    tmp_path: Path, cond_generator: Any
) -> None:
    """The first model serves a version the job does not beat (FID 50 against the candidate's
    80): the candidate is refused there, yet the conditional model, which has no version and
    whose misses wait for this job, gets it; later refusals publish it no more."""
    (tmp_path / "base" / "3").mkdir(parents=True)
    (tmp_path / "clf.keras").write_bytes(b"x")
    cond: list[int] = []

    def publish_cond(net: Any, quality: dict[str, Any], _training: dict[str, Any]) -> int:
        assert len(net.inputs) == 2  # the conditional networks, unwrapped
        cond.append(len(cond) + 1)
        (tmp_path / "cond" / str(cond[-1])).mkdir(parents=True)
        return cond[-1]

    worse = {"fid": 80.0, "samples": 256, "evaluator": "fmnist-fullres-v2"}
    job = CompanionJob(tmp_path, worse, publish_cond)
    state: dict[str, Any] = {"clock_s": 12.0, "completed_epochs": 3}
    job._candidate(cond_generator, state)
    assert job.published == [] and "worse" in state["candidates"][-1]["verdict"]
    assert cond == [1] and state["companion_versions"] == [1]
    job._candidate(cond_generator, state)
    assert cond == [1]
