"""Named entities: found once at ingest by the real en_core_web_sm, stored with each chunk
(chunks.jsonl and Milvus records), recorded in the manifest; an index saved without them still
loads and answers, without a lead. And the light question side: answer types from the learned
table, the lead chosen among the stored entities."""

from __future__ import annotations

import json
import logging

import pytest

from bot.answering.answer_type import AnswerType, answer_type, asks_yes_or_no, question_keys, type_keys
from bot.answering.lead import find_lead
from embeddings import storage
from embeddings.entities import ENTITY_MODEL
from embeddings.index import CHUNKS_FILE, ChunkRecord, Index


@pytest.mark.slow
def test_the_recorded_model_is_the_installed_one():
    from embeddings.entities import model_id, tag_texts

    assert model_id() == ENTITY_MODEL
    [found] = tag_texts(["Talks open in Geneva on Jan. 10, Ryabkov told Izvestia."])
    labelled = {("Talks open in Geneva on Jan. 10, Ryabkov told Izvestia."[a:b], label) for a, b, label in found}
    assert {("Geneva", "GPE"), ("Jan. 10", "DATE")} <= labelled


def test_entities_are_stored_with_each_chunk_and_in_the_manifest(sample_index):
    index = Index.load(sample_index)
    assert index.entities == ENTITY_MODEL
    version = storage.current_version(sample_index)
    assert json.loads((version / storage.MANIFEST).read_text())["entities"] == ENTITY_MODEL
    found = set()
    for chunk in index.chunks:
        assert chunk.entities is not None
        for i, sentence in enumerate(chunk.sentence_texts()):
            found |= {(sentence[a:b], label) for a, b, label in chunk.sentence_entities(i) or ()}
    assert ("Jan. 10", "DATE") in found and ("Izvestia", "ORG") in found or ("Izvestia", "GPE") in found


def test_a_milvus_record_keeps_its_entities():
    record = ChunkRecord("d#0", "d", 0, 0, 30, "Talks open on Jan. 10 in Geneva.", ((0, 32),),
                         ((14, 21, "DATE"), (25, 31, "GPE")))
    assert ChunkRecord.from_json(record.to_json()) == record  # chunks.jsonl and a Milvus entity's record
    old = json.loads(record.to_json())
    del old["entities"]  # a record written before entities were stored
    assert ChunkRecord.from_json(json.dumps(old)).entities is None


def test_an_index_saved_without_entities_still_answers_without_a_lead(index_copy, settings, caplog):
    from bot.answering.answerer import Answerer

    version = storage.current_version(index_copy)
    chunks = version / CHUNKS_FILE
    rows = [json.loads(line) for line in chunks.read_text(encoding="utf-8").splitlines()]
    chunks.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "entities"}) + "\n" for r in rows),
                      encoding="utf-8")
    manifest = json.loads((version / storage.MANIFEST).read_text())
    del manifest["entities"]
    manifest["files"][CHUNKS_FILE] = storage.sha256_file(chunks)
    (version / storage.MANIFEST).write_text(json.dumps(manifest))

    with caplog.at_level(logging.WARNING):
        answerer = Answerer.from_settings(settings, index_dir=index_copy)
    assert [r.getMessage() for r in caplog.records if "re-ingest" in r.getMessage()] == [
        "this index stores no named entities: answers come without a lead and typed questions are not "
        "checked; re-ingest (qabot ingest --rebuild) to enable them"]
    assert answerer.index.entities is None and all(c.entities is None for c in answerer.index.chunks)
    answer = answerer.ask("When are the Geneva talks?")
    assert not answer.abstained and answer.highlighted == "Jan. 10" and answer.lead is None


# --- question types (no model) -------------------------------------------------------------------

@pytest.mark.parametrize("question, keys", [
    ("When are the Geneva talks?", ["when"]),
    ("In what year did the crisis start?", ["what year", "what"]),
    ("How many people live there?", ["how many peopl", "how many", "how"]),
    ("What is the name of the river?", ["what is the name", "what is", "what"]),
    ("Which newspaper interviewed him?", ["which newspap", "which"]),
    ("What did Ryabkov say?", ["what did", "what"]),
    ("Tell me about Geneva.", []),
])
def test_question_keys_go_from_specific_to_general(question, keys):
    assert question_keys(question) == keys


def test_answer_types_come_from_the_learned_table():
    when = answer_type("When are the Geneva talks?")
    assert when is not None and "DATE" in when.labels and when.typed
    many = answer_type("How many nuclear warheads does Russia have?")
    assert many is not None and "CARDINAL" in many.labels and many.typed
    why = answer_type("Why did prices rise?")
    assert why is None or not why.leads
    assert answer_type("Tell me about Geneva.") is None


WHEN = AnswerType("when", {"DATE": 0.75, "NONE": 0.25})


def test_the_lead_is_the_entity_of_the_type_nearest_the_question_words():
    sentence = "On Dec. 1 officials met; the Geneva talks open on Jan. 10, Ryabkov said."
    entities = [(3, 9, "DATE"), (29, 35, "GPE"), (50, 57, "DATE"), (59, 66, "PERSON")]
    lead = find_lead("When are the Geneva talks?", WHEN, sentence, entities)
    assert lead is not None and sentence[lead.start:lead.end] == "Jan. 10" and lead.label == "DATE"


def test_an_entity_the_question_names_is_no_lead():
    sentence = "The talks of January 2022 were held in Geneva."
    entities = [(13, 25, "DATE"), (39, 45, "GPE")]
    assert find_lead("What happened in January 2022?", AnswerType("what happen", {"DATE": 0.9}),
                     sentence, entities) is None
    assert find_lead("When were the talks?", WHEN, sentence, entities).start == 13


@pytest.mark.parametrize(("question", "polar"), [
    ("Is the dialogue totally dependent on the guarantees?", True),
    ("Did Russia set a deadline?", True),
    ("Is the UMC pro-life or pro-choice?", False),  # alternatives: one of them is the answer
    ("When are the Geneva talks?", False),
    ("Tell me about Geneva.", False),
])
def test_a_yes_or_no_question_is_told_apart(question, polar):
    assert asks_yes_or_no(question) is polar


def test_a_yes_or_no_question_gets_no_lead(answerer):
    question = "Is the strategic stability dialogue totally dependent on the security guarantees?"
    answer = answerer.ask(question)
    assert not answer.abstained and "total dependence" in answer.text
    assert answer.lead is None


@pytest.mark.parametrize("question", ["How many days of annual leave do I get?", "How many vacation days do I get?",
                                      "How many hours do I have to report a lost laptop?"])
def test_how_many_units_of_time_asks_for_a_duration(question):
    kind = answer_type(question)
    assert kind is not None and kind.key == "how many (time)" and "DATE" in kind.labels
    assert "CARDINAL" not in kind.labels


def test_how_many_of_other_things_still_asks_for_a_count():
    assert type_keys("How many times did he win?") == question_keys("How many times did he win?")
    assert answer_type("How many Super Bowl titles did they win?").labels == {"CARDINAL"}
