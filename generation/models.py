from django.db import models


class WorkerHeartbeat(models.Model):
    """A row written by a worker when asked: proof that the queue, a worker and the database connect."""

    token = models.CharField(max_length=64, unique=True)
    hostname = models.CharField(max_length=255)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.hostname} @ {self.created:%Y-%m-%d %H:%M:%S}"
