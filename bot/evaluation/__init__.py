"""`qabot eval`, one module per job: data (load the contexts and questions), metrics (SQuAD
exact match / F1 and the run summary), runner (index, ask, measure), report (the printed table)."""
