"""One answer layout in every front end: the lead, the evidence once (the lead bold inside it), the
source, the other passages folded away — in the CLI, Slack's blocks and notification text, and
``--json``. No answer shows the same sentence twice, for every question the tests ask."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from bot.answer_lines import passage_excerpt
from bot.answering.answer import ABSTAIN_TEXT, Answer, Citation
from bot.answering.layout import answer_layout, layout_json
from bot.cli_render import StreamedText
from bot.cli_render import render_answer as render_cli
from bot.slack.blocks import passage_block
from bot.slack.blocks import render_answer as render_slack
from bot.slack.sources import SOURCES_ACTION, parse_sources_value

TESTS = Path(__file__).resolve().parent
TITLE = "Talks in Geneva"
S1 = "The talks in Geneva open on Jan. 10, and Ryabkov will head the Russian delegation."
S2 = "He told Izvestia that results are needed within a few weeks."
OTHER = "NATO's answer is expected later. It will be discussed in Brussels."
# A question the tests ask: a string literal opening with a question word and ending with "?".
QUESTION_LITERAL = re.compile(r"""["']((?:What|When|Who|Whom|Whose|Where|Which|How|Why|And|Is|Does|Did|Was|Were"""
                              r"""|Are|Do|Can|Has|Have)\b[^"'\n]{2,200}\?)["']""")
ISSUE_QUESTIONS = ("How many nuclear warheads does Russia have?", "What is Sergey Ryabkov's job?",
                   "How tall is the Eddystone Lighthouse?")


def passage(text: str, quote: str = "", chunk_id: str = "talks#0", **kwargs) -> Citation:
    return Citation(kwargs.pop("document", TITLE), "talks.txt", kwargs.pop("url", None), chunk_id, text, 0.8,
                    quote, **kwargs)


def hand_made(lead: bool = True, two_sentences: bool = False) -> Answer:
    """An extractive answer as the answerer makes one: quoted sentences, their spans, the lead."""
    text = S1 + (" " + S2 if two_sentences else "")
    spans = ((0, len(S1), 0),) + (((len(S1) + 1, len(text), 0),) if two_sentences else ())
    start = text.index("Jan. 10")
    citations = (passage(S1 + " " + S2 + " " + OTHER, text, page=3), passage(OTHER, "", "talks#1"),
                 passage("Unrelated passage text here.", "", "other#0", document="Other article",
                         url="https://example.com/other"))
    # The lead is the highlight when it is an entity of the question's type (`Answer.typed`).
    answer = Answer("When are the talks?", text, False, citations, (start, start + 7), typed=lead,
                    sentence_spans=spans)
    assert answer.lead == ("Jan. 10" if lead else None)
    return answer


def cli_text(answer: Answer, **kwargs) -> str:
    console = Console(file=io.StringIO(), width=200, highlight=False, soft_wrap=True)
    render_cli(answer, console, **kwargs)
    return console.file.getvalue()


def slack_texts(answer: Answer) -> tuple[str, str]:
    """(every text in the blocks, the notification text) of the Slack message."""
    message = render_slack(answer, feedback_id="f1")
    texts = []
    for block in message.blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"]["text"])
        texts += [e["text"] for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return "\n".join(texts), message.text


def sentences(rendered: str) -> list[str]:
    """The sentences of a rendering, normalised: markup, quotes and "…" dropped, case folded;
    fragments of fewer than four words (a lead, a title's end) are not sentences."""
    plain = re.sub(r"[*>“”]|&gt;|&lt;|&amp;|…", " ", rendered)
    found = []
    for piece in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])|\n", plain):
        words = re.findall(r"\w+", piece.casefold())
        if len(words) >= 4:
            found.append(" ".join(words))
    return found


def repeated(rendered: str) -> list[str]:
    seen: set[str] = set()
    twice = []
    for sentence in sentences(rendered):
        if sentence in seen:
            twice.append(sentence)
        seen.add(sentence)
    return twice


# --- hand-made answers ----------------------------------------------------------------------------

def test_cli_shows_the_lead_then_the_evidence_once_then_the_source():
    lines = cli_text(hand_made()).splitlines()
    assert lines[0] == "Jan. 10"
    assert lines[1] == f"“{S1}”"
    assert lines[2] == f"  — {TITLE}, p. 3"
    assert lines[3] == "  2 more passages (--sources to show)"
    assert len(lines) == 4


def test_cli_bolds_the_lead_inside_the_quote_at_a_terminal():
    console = Console(file=io.StringIO(), width=200, force_terminal=True, color_system="standard")
    render_cli(hand_made(), console)
    quote = console.file.getvalue().splitlines()[1]
    assert "\x1b[1;36mJan. 10\x1b[0m" in quote and quote.count("Jan. 10") == 1


def test_cli_wraps_between_words_at_a_terminal_and_writes_whole_lines_elsewhere():
    """At a 40-column terminal no word of the quote is cut across lines (the terminal's own wrap
    would cut "Geneva" as "Gen|eva"); into a file each line stays whole, however long."""
    at_terminal = Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None, soft_wrap=True)  # as cli_render.out
    render_cli(hand_made(two_sentences=True), at_terminal)
    lines = at_terminal.file.getvalue().splitlines()
    assert len(lines) > 4 and all(len(line) <= 40 for line in lines), lines
    quoted = " ".join(line.strip() for line in lines[1:lines.index(next(x for x in lines if "—" in x))])
    assert quoted == f"“{S1} {S2}”" or quoted.split() == f"“{S1}” “{S2}”".split()

    into_file = Console(file=io.StringIO(), width=40, highlight=False, soft_wrap=True)
    render_cli(hand_made(two_sentences=True), into_file)
    assert f"“{S1}”" in into_file.file.getvalue().splitlines()


def test_cli_sources_lists_the_folded_passages_without_the_quoted_sentences():
    shown = cli_text(hand_made(two_sentences=True), sources=True)
    assert "more passages" not in shown
    assert "NATO's answer is expected later." in shown and "Unrelated passage text here." in shown
    assert shown.count(TITLE) == 1  # the title once, its passages under it
    assert "  · Other article, https://example.com/other\n      Unrelated passage text here." in shown
    assert shown.count("Jan. 10, and Ryabkov") == 1 and shown.count("within a few weeks") == 1
    assert not repeated(shown)


def test_a_sentence_quoted_from_two_overlapping_passages_is_shown_once():
    text = S1 + " " + S1
    citations = (passage(S1, S1), passage(S1 + " " + OTHER, S1, "talks#1"))
    answer = Answer("When?", text, False, citations, sentence_spans=((0, len(S1), 0), (len(S1) + 1, len(text), 1)))
    assert [line.text for line in answer_layout(answer).evidence] == [S1]
    blocks, notification = slack_texts(answer)
    for rendered in (cli_text(answer), cli_text(answer, sources=True), blocks, notification):
        assert rendered.count("The talks in Geneva open") == 1, rendered


def test_a_long_sentence_is_trimmed_around_the_lead():
    long = ("In a long interview that covered many subjects, from the economy to the weather and the state of "
            "the roads in winter, he said the talks open on Jan. 10 in Geneva, after which the delegations "
            "will report to their capitals and then meet again in Brussels and in Vienna later in the month.")
    start = long.index("Jan. 10")
    answer = Answer("When?", long, False, (passage(long, long),), (start, start + 7),
                    typed=True, sentence_spans=((0, len(long), 0),))
    line = answer_layout(answer).evidence[0]
    assert line.text.startswith("…") and line.text.endswith("…")
    assert line.bold and line.text[line.bold[0]:line.bold[1]] == "Jan. 10"
    assert cli_text(answer).splitlines()[1] == f"“{line.text}”"


def test_slack_leads_bolds_the_lead_in_the_quote_and_names_the_source():
    message = render_slack(hand_made(), feedback_id="f1")
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert sections == ["*Jan. 10*", "> “The talks in Geneva open on *Jan. 10*, and Ryabkov will head the "
                                     "Russian delegation.”"]
    context = [b["elements"][0]["text"] for b in message.blocks if b["type"] == "context"]
    assert context == [f"📄 {TITLE}, p. 3 · 2 more passages"]
    buttons = message.blocks[-1]["elements"]
    assert [b["action_id"] for b in buttons] == ["qabot_feedback_up", "qabot_feedback_down", SOURCES_ACTION]
    assert parse_sources_value(buttons[2]["value"]) == ["talks#0", "talks#1", "other#0"]
    assert message.text == f"Jan. 10 — “{S1}”"


def test_without_a_lead_the_evidence_comes_first_still_bold_where_it_answers():
    answer = hand_made(lead=False)
    assert cli_text(answer).splitlines()[0] == f"“{S1}”"
    message = render_slack(answer)
    evidence = message.blocks[0]["text"]["text"]
    assert evidence.startswith("> “The talks") and "*Jan. 10*" in evidence
    assert message.text == f"“{S1}”"


def test_a_decline_says_so_once_with_the_nearest_passage_once():
    nearest = passage(OTHER)
    answer = Answer("How many warheads?", ABSTAIN_TEXT, True, (nearest,))
    lines = cli_text(answer).splitlines()
    assert lines == [ABSTAIN_TEXT, f"  Nearest passage — {TITLE}:", f"  > {OTHER}"]
    message = render_slack(answer, feedback_id="f2")
    assert message.text == ABSTAIN_TEXT
    assert json.dumps(message.blocks).count("NATO") == 1
    assert SOURCES_ACTION not in json.dumps(message.blocks)
    assert layout_json(answer) == {"lead": None, "evidence": []}


def test_a_passage_on_one_line_keeps_headings_apart_and_cuts_at_a_word():
    text = "Office\n\nThe Berlin office is open from 8:00 to 19:00 on weekdays. Parking is in the garage."
    assert passage_excerpt(text, set()) == ("Office — The Berlin office is open from 8:00 to 19:00 on weekdays. "
                                            "Parking is in the garage.")
    assert passage_excerpt(text, set(), limit=30) == "Office — The Berlin office is…"
    block = passage_block(Citation("Handbook", "handbook.md", None, "c0", text, 0.5), "", 500)
    assert block["text"]["text"] == "> Office — " + text.split("\n\n")[1]


def test_a_composed_answer_is_its_text_then_numbered_sources_each_sentence_once():
    text = "The talks open on Jan. 10 [1]. He told Izvestia that results are needed within a few weeks. [2]"
    citations = (passage(S1, S1, number=1), passage(S2, S2, "talks#1", number=2))
    answer = Answer("When?", text, False, citations, composed=True)
    shown = cli_text(answer)
    assert shown.splitlines()[0] == text
    assert f"  [1] {TITLE}" in shown and f"“{S1}”" in shown
    assert shown.count("within a few weeks") == 1  # [2]'s quote is already in the text
    blocks, notification = slack_texts(answer)
    assert blocks.count("within a few weeks") == 1 and "[1] Talks in Geneva: “The talks" in blocks
    assert notification == text
    assert layout_json(answer)["evidence"] == [{"text": S1, "bold": None, "citation": 0},
                                               {"text": S2, "bold": None, "citation": 1}]


def test_streamed_composed_text_is_not_printed_again():
    text = "The talks open on Jan. 10 [1]."
    answer = Answer("When?", text, False, (passage(S1, S1, number=1),), composed=True)
    screen = io.StringIO()
    stream = StreamedText(Console(file=screen, width=200))
    for piece in ("The talks open ", "on Jan. 10 [1]."):
        stream(piece)
    stream.finish(answer)
    assert screen.getvalue().count("The talks open") == 1 and f"“{S1}”" in screen.getvalue()


def test_json_lead_and_evidence():
    data = layout_json(hand_made(two_sentences=True))
    assert data["lead"] == "Jan. 10"
    assert data["evidence"] == [{"text": S1, "bold": [S1.index("Jan. 10"), S1.index("Jan. 10") + 7], "citation": 0},
                                {"text": S2, "bold": None, "citation": 0}]


# --- every question the tests ask, answered for real ----------------------------------------------

def questions_in_tests() -> list[str]:
    found: set[str] = set(ISSUE_QUESTIONS)
    for path in TESTS.glob("*.py"):
        found.update(m.group(1) for m in QUESTION_LITERAL.finditer(path.read_text(encoding="utf-8")))
    return sorted(found)


def test_the_tests_ask_many_questions_about_the_article():
    questions = questions_in_tests()
    assert len(questions) >= 50 and "When are the Geneva talks?" in questions


def test_no_answer_shows_a_sentence_twice_in_any_rendering(answerer):
    checked = 0
    for question in questions_in_tests():
        answer = answerer.ask(question)
        blocks, notification = slack_texts(answer)
        for name, rendered in (("CLI", cli_text(answer)), ("Slack blocks", blocks),
                               ("notification", notification)):
            assert not repeated(rendered), f"{name} repeats a sentence for {question!r}:\n{rendered}"
        checked += 1
        layout = answer_layout(answer)
        if not layout.abstained:
            assert layout.evidence and all(line.text in cli_text(answer) for line in layout.evidence)
    assert checked == len(questions_in_tests())


def test_ask_json_keeps_its_keys_and_adds_lead_and_evidence(sample_index):
    from .test_cli import run

    result = run("ask", "--json", "When are the Geneva talks?", index=sample_index)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) >= {"question", "answer", "abstained", "highlight", "citations", "timings_ms", "reader",
                         "composed", "notice", "llm", "lead", "evidence"}
    assert data["evidence"] and all(set(line) == {"text", "bold", "citation"} for line in data["evidence"])
    first = data["evidence"][0]
    assert first["text"].strip("…") in data["answer"] and 0 <= first["citation"] < len(data["citations"])
    if first["bold"]:
        assert first["text"][first["bold"][0]:first["bold"][1]] == data["highlight"]


def test_ask_folds_the_other_passages_unless_asked(sample_index):
    from .test_cli import run

    folded = run("ask", "Which newspaper interviewed him?", index=sample_index)
    assert folded.returncode == 0, folded.stderr
    assert "more passages (--sources to show)" in folded.stdout and "  · " not in folded.stdout
    for flag in ("--sources", "-v"):
        shown = run("ask", flag, "Which newspaper interviewed him?", index=sample_index)
        assert shown.returncode == 0, shown.stderr
        assert "more passage" not in shown.stdout
        above = folded.stdout.splitlines()[:-1]  # the answer and its source line, then the folded count
        lines = shown.stdout.splitlines()
        assert lines[:len(above)] == above
        # The folded passages, under the title already named (the article's own): indented text.
        assert len(lines) > len(above) and all(line.startswith("      ") for line in lines[len(above):])
        assert not repeated(shown.stdout)
