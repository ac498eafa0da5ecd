"""The quiz's catalog fixtures, reused: games need tiles to deal."""

from tests.quiz.conftest import catalog, full_catalog, play_through, private_cache  # noqa: F401
