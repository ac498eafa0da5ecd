"""Statistics of the rating studies and of the game: plain functions over pandas DataFrames.

No Django here (tests/test_layout.py enforces it): the page, the exports and the `study_stats` command all
call `report.analyse_study` / `report.analyse_game`, and a lab can run the same code on its own files.
"""
