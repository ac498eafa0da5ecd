"""A job of N always ends with exactly N tiles: run twice, after a killed worker, or by two workers."""

from __future__ import annotations

import re
import time

import pytest
from django.core.management import call_command

from generation.jobs import generation_job_run
from generation.loader import weights_sha256
from generation.models import Checkpoint, GenerationJob, Tile
from generation.services import checkpoint_register, generation_job_create
from generation.tasks import generation_job_submit, generation_jobs_resume_stalled, run_generation_job
from tests.generation.conftest import make_gan_run


def _files(media_root):
    return [p for p in media_root.rglob("*") if p.is_file()]


def _wait_for(predicate, timeout: float = 60.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def _finished_runs(*workers, task: str = "run_generation_job") -> int:
    """Runs of `task` the workers have finished (Celery logs each as succeeded, or raised)."""
    text = "".join(worker.log() for worker in workers)
    return len(re.findall(rf"{task}\[[^\]]+\] (?:succeeded|raised)", text))


@pytest.fixture
def checkpoint(db, gan_run, small_tiles):
    return checkpoint_register(run_dir=str(gan_run), name="lung-gan")


@pytest.mark.django_db
class TestInProcess:
    def test_registering_reads_kind_and_tissue_from_the_run(self, checkpoint, gan_run):
        assert checkpoint.kind == Checkpoint.Kind.GAN
        assert checkpoint.tissue == "Lung"
        assert checkpoint.run_dir == str(gan_run.resolve())
        assert len(checkpoint.weights_sha256) == 64

    def test_a_job_makes_exactly_n_tiles_with_one_row_and_file_each(self, checkpoint, media_root, small_tiles):
        job = generation_job_create(checkpoint=checkpoint, requested=7)
        job = generation_job_run(job_pk=job.pk, batch_size=3)
        assert job.status == GenerationJob.Status.DONE and job.produced == 7
        tiles = Tile.objects.filter(job=job)
        assert sorted(tiles.values_list("job_index", flat=True)) == list(range(7))
        assert {t.source for t in tiles} == {"gan"} and {t.tissue for t in tiles} == {"Lung"}
        assert len(_files(media_root)) == 7

    def test_running_a_finished_job_again_adds_nothing(self, checkpoint, media_root, small_tiles):
        job = generation_job_create(checkpoint=checkpoint, requested=5)
        generation_job_run(job_pk=job.pk)
        job.status = GenerationJob.Status.RUNNING  # as if a redelivered message found it unfinished
        job.save()
        assert generation_job_run(job_pk=job.pk).produced == 5
        assert Tile.objects.count() == 5 and len(_files(media_root)) == 5

    def test_a_rerun_makes_only_the_missing_tiles_and_the_same_ones(self, checkpoint, media_root, small_tiles):
        job = generation_job_create(checkpoint=checkpoint, requested=6)
        generation_job_run(job_pk=job.pk)
        before = dict(Tile.objects.values_list("job_index", "sha256"))
        lost = Tile.objects.filter(job_index__in=[1, 4])
        for tile in lost:
            (media_root / tile.image.name).unlink()
        lost.delete()
        GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.RUNNING)
        generation_job_run(job_pk=job.pk)
        assert dict(Tile.objects.values_list("job_index", "sha256")) == before  # seeds fix every tile

    def test_a_corrupt_checkpoint_fails_the_job_readably_and_leaves_no_tiles(self, checkpoint, gan_run, media_root):
        weights = gan_run / "generator_ema.safetensors"
        weights.write_bytes(weights.read_bytes()[:100])
        Checkpoint.objects.filter(pk=checkpoint.pk).update(weights_sha256=weights_sha256(gan_run))
        job = generation_job_create(checkpoint=checkpoint, requested=3)
        job = generation_job_run(job_pk=job.pk)
        assert job.status == GenerationJob.Status.FAILED
        assert "generator_ema.safetensors" in job.error and "safetensors" in job.error
        assert Tile.objects.count() == 0 and _files(media_root) == []

    def test_weights_changed_after_registration_are_refused(self, checkpoint, gan_run, media_root):
        other = make_gan_run(gan_run.parent / "other", seed=1)
        (gan_run / "generator_ema.safetensors").write_bytes((other / "generator_ema.safetensors").read_bytes())
        job = generation_job_create(checkpoint=checkpoint, requested=2)
        job = generation_job_run(job_pk=job.pk)
        assert job.status == GenerationJob.Status.FAILED
        assert "weights changed since registration" in job.error and "register the checkpoint again" in job.error
        assert Tile.objects.count() == 0

    def test_an_rnagan_checkpoint_takes_expression_and_a_gan_refuses_it(self, checkpoint):
        with pytest.raises(ValueError, match="takes no expression"):
            generation_job_create(checkpoint=checkpoint, requested=1, expression_source="sample", expression_ref="X")

    def test_pregenerate_command_queues_a_job(self, checkpoint, capsys, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            call_command("pregenerate", "--checkpoint", "lung-gan", "--n", "4")
        assert "queued job" in capsys.readouterr().out
        assert len(callbacks) == 1  # queued only once the transaction commits
        assert GenerationJob.objects.get().requested == 4


@pytest.mark.worker
class TestWithRealWorkers:
    def test_a_job_sent_through_redis_ends_with_exactly_n_tiles(self, celery_worker_factory, checkpoint, media_root,
                                                                small_tiles, settings):
        worker = celery_worker_factory()
        settings.RNAGAN_GENERATION_QUEUE = worker.queue
        job = generation_job_submit(checkpoint=checkpoint, requested=12)
        assert _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).status == "done"), worker.log()
        assert Tile.objects.filter(job=job).count() == 12 and len(_files(media_root)) == 12

        run_generation_job.apply_async(kwargs={"job_pk": job.pk}, queue=worker.queue)  # a second run
        assert _wait_for(lambda: _finished_runs(worker) == 2), worker.log()
        assert Tile.objects.filter(job=job).count() == 12 and len(_files(media_root)) == 12

    def test_a_worker_killed_mid_job_and_restarted_finishes_with_exactly_n(self, celery_worker_factory, checkpoint,
                                                                           media_root, small_tiles, settings):
        slow = {"RNAGAN_GENERATION_BATCH": "1", "RNAGAN_ENCODE_THREADS": "1"}
        worker = celery_worker_factory(env=slow)
        settings.RNAGAN_GENERATION_QUEUE = worker.queue
        job = generation_job_submit(checkpoint=checkpoint, requested=150)
        assert _wait_for(lambda: Tile.objects.filter(job=job).count() >= 10, interval=0.02), worker.log()
        worker.kill()
        produced_at_kill = Tile.objects.filter(job=job).count()
        assert produced_at_kill < 150, "the job finished before the kill: make it longer"

        replacement = celery_worker_factory(env=slow, queue=worker.queue)
        assert generation_jobs_resume_stalled(stale_after_s=0.001, queue=replacement.queue) == [job.pk]
        assert _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).status == "done", timeout=120), replacement.log()
        assert Tile.objects.filter(job=job).count() == 150
        assert sorted(Tile.objects.filter(job=job).values_list("job_index", flat=True)) == list(range(150))
        files = _files(media_root)
        assert len(files) == 150, "orphan or partial files were left behind"

    def test_two_workers_on_one_job_do_not_duplicate(self, celery_worker_factory, checkpoint, media_root,
                                                     small_tiles, settings):
        first = celery_worker_factory(env={"RNAGAN_GENERATION_BATCH": "4"})
        second = celery_worker_factory(env={"RNAGAN_GENERATION_BATCH": "4"}, queue=first.queue)
        settings.RNAGAN_GENERATION_QUEUE = first.queue
        job = generation_job_submit(checkpoint=checkpoint, requested=60)
        run_generation_job.apply_async(kwargs={"job_pk": job.pk}, queue=first.queue)
        run_generation_job.apply_async(kwargs={"job_pk": job.pk}, queue=first.queue)
        assert _wait_for(lambda: GenerationJob.objects.get(pk=job.pk).status == "done", timeout=90), first.log()
        # The on-commit queueing and the two explicit sends: three runs, all finished before counting.
        assert _wait_for(lambda: _finished_runs(first, second) == 3, timeout=90), first.log() + second.log()
        assert Tile.objects.filter(job=job).count() == 60
        assert len(_files(media_root)) == 60


def test_every_beat_entry_names_a_registered_task():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
