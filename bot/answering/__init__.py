"""Answering: a question in, a quoted `Answer` (or an honest abstention) out.

The data path, one module per step, read top to bottom:

    question.py   clean the question, resolve a follow-up against the conversation
    fusion.py     how dense and keyword rankings are fused (a strategy, chosen by name)
    retrieval.py  the best passages for the question
    sentences.py  read: score every sentence of those passages (the `SentenceScorer` step)
    irregular.py  irregular forms as stems ("said" is "say"), from en_core_web_sm's lemma tables
    answer_type.py  the entity type a question asks for (a table learned on SQuAD, no model)
    lead.py       the sentence to quote (typed questions: one holding an entity of their type) and its lead
    spans.py      candidate answer spans of a sentence (short phrases and stored entities), their features
    span_scorer.py  the learned span scorer: the likeliest answer span, leading when sure enough
    span_table.py   its scores of a sentence's candidates, from per-sentence tables (the features' sums to the bit)
    span_question.py  what the question's wording says of a span: focus noun, key, run of its words, main clause
    word_vectors.py   the encoder's input word embeddings, memory-mapped: a word look-up, no model run
    judge.py      judge: does the best sentence answer? (a typed `Verdict`)
    answerability.py  the learned judge's features and weights (trained on ../shared/train)
    tree_ensemble.py  gradient-boosted trees evaluated with numpy: the learned judge on the request path
    focus.py      the rules' highlight, for an index that stores no entities
    compose.py    quote the chosen sentences with citations -> `Answer`
    answer.py     the plain `Answer`/`Citation` data every front end renders
    layout.py     `AnswerLayout`: the lead, the evidence once, the source, for every front end
    answerer.py   `Answerer`: runs the steps above, nothing else

Beside the data path:

    llm.py        composed answers ([llm] enabled): the passages to an LLM, its reply checked
    llm_client.py one chat completion from an OpenAI-compatible server, whole or streamed
    grounding.py  the numbered sources and prompt for the LLM, and the check of its reply
    live.py       `LiveAnswerer`: an `Answerer` that follows its index directory (serve, chat)
"""
