"""`qabot eval`, one module per job: data (load the contexts and questions), metrics (SQuAD
exact match / F1 and the run summary), runner (index, ask, measure), report (the printed table).
Train-time tools, run by hand on ../shared/train: learn_types (the answer-type table), tune_lead (the lead numbers), train_judge
(the answerability judge's weights), build_irregular (the irregular forms' table)."""
