"""The synthetic paired cohort: a test-and-demo instrument (histology renderer, cohort and slide writers, morphometry)."""
