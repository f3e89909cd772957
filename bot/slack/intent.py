"""Is a message in a Q&A channel a question for the bot? Decided from its grammatical form.

In a Q&A channel (``[slack] qa_channels``) the bot reads every top-level message without being
mentioned, so it must tell questions from the rest of the conversation ("thanks!", "ok", "see you",
"The talks went well"). Guessing from the documents (answer whatever matches) would make it reply
to statements about the indexed topics; a list of chatty phrases would only cover the phrases on
it. English marks a question in its form, so that is what is read here, clause by clause:

- `Kind.QUESTION` — an interrogative: a sentence ending in ``?``; or a clause opening with
  subject–auxiliary inversion ("Is the…", "Did Ryabkov…", "Can you…"), or with a wh-word that is
  either followed by that inversion ("When are the talks", "In what year did…") or is itself the
  subject ("Who heads…", "What happened", "How many…"). The bot answers, and says so when the
  documents hold no answer: the person asked.
- `Kind.REQUEST` — a request for information that is not interrogative in form: an imperative
  directive ("Tell me…", "Explain…", "List…") or an indirect question ("I wonder when…", "I'd like
  to know…"); and one- or two-word "?" messages ("Really?", "ok?") that react to something rather
  than ask the documents. The bot answers only when it finds an answer; it stays silent on a
  decline, since the message may not have been meant for it.
- `Kind.NOT_A_QUESTION` — everything else: statements, thanks, greetings, acknowledgements. The
  answerer is not even asked.

A wh-word inside a sentence usually opens a relative or subordinate clause ("…, which was
launched", "When Sky was launched, …"), and exclamations are not questions ("What a relief!",
"How nice!"); neither counts. Text in parentheses and links are ignored. Bare keyword queries
("Geneva talks date") read as statements: in a Q&A channel, mention the bot or add a ``?``.

Measured on ../shared/eval (`tests/test_slack_qa_channels.py` keeps a sample of the shapes): with
their "?" removed, 88% of the 1,985 SQuAD questions still read as questions (most of the rest keep
the wh-word in place, quiz style: "…was based on what novel"); of the 1,991 sentences of the SQuAD
passages, all declarative, 4 (0.2%) read as questions ("Will Wilkinson of…").
"""

from __future__ import annotations

import enum
import re

# A "?"-question needs this many words to be worth a reply even when nothing is found: "Why?",
# "Really?", "ok?" react to what someone said; the documents can't answer them.
MIN_QUESTION_WORDS = 3
# An inverted auxiliary later in a sentence counts only after a short opener ("Hi all, is the…",
# "Quick question: did…"): after a longer phrase it is a declarative's verb ("Sky, formerly BSkyB,
# is a…"). Three words cover the greetings and vocatives seen in chat.
MAX_OPENER_WORDS = 3

WH_WORDS = frozenset("what when where who whom whose which why how".split())
# "What's", "Where's"…: a wh-word with its auxiliary ("is", "has") already attached.
WH_CONTRACTIONS = frozenset("whats wheres whos hows whens whys".split())
# Wh-words that can be the subject themselves, so no inversion follows ("Who heads…").
SUBJECT_WH = frozenset("what who which whose".split())
# Words "how" asks about without an auxiliary after it ("How many…", "How long…").
DEGREE_WORDS = frozenset("many much long often far old big large soon high come".split())
# "do" and the modals: after a subject wh-word later in a sentence they still mark a question
# ("…, which did you mean"), where "be" and "have" mostly open a relative clause ("…, which is the").
DO_AND_MODALS = frozenset("do does did can could will would shall should may might must".split())
# Finite auxiliaries and modals: at the head of a clause and followed by a subject they invert a
# yes/no question ("Is the deadline…"); with no subject after them they are an ellipsis ("Will do").
AUXILIARIES = frozenset("""
    am is are was were do does did have has had can could will would shall should may might must
    isnt arent wasnt werent dont doesnt didnt havent hasnt hadnt cant couldnt wont wouldnt shouldnt
    mustnt
""".split())
# What may stand as the subject right after an inverted auxiliary: pronouns, determiners and
# quantifiers (a proper noun, capitalised, or a number is accepted too).
SUBJECT_STARTERS = frozenset("""
    i you he she it we they there this that these those anyone anybody someone somebody everyone
    everybody anything something nobody nothing one the a an any some my your our their his her
    its all each every no either neither both
""".split())
# Prepositions that may carry a wh-word to the front of a question ("In what year…", "To whom…").
PREPOSITIONS = frozenset("""
    in on at by for from to with within of about during since until after before under over through
    into between among against toward towards upon
""".split())
# Directive verbs that open an imperative request for information.
DIRECTIVE_VERBS = frozenset("""
    tell show explain describe list give find summarize summarise define compare clarify remind
    share name quote
""".split())
# Courtesy words that may precede a directive ("please explain…", "pls list…").
COURTESY = frozenset("please pls plz kindly".split())
# Indirect questions: a clause opening with one of these word sequences.
INDIRECT_OPENINGS = (
    ("i", "wonder"), ("im", "wondering"), ("i", "am", "wondering"), ("wondering",), ("i", "was", "wondering"),
    ("i", "would", "like", "to", "know"), ("id", "like", "to", "know"), ("i", "want", "to", "know"),
    ("i", "need", "to", "know"), ("any", "idea"), ("any", "ideas"), ("anyone", "know"), ("anybody", "know"),
    ("looking", "for"),
)
# "What a…", "How nice…": exclamatives, not questions.
EXCLAMATIVE_SECOND_WORDS = frozenset("a an".split())


class Kind(enum.Enum):
    QUESTION = "question"  # interrogative: answered, a decline included
    REQUEST = "request"  # a request for information: answered only when an answer is found
    NOT_A_QUESTION = "not a question"  # ignored


_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*|[.!?]+")
_CLAUSE_BREAK = re.compile(r"[,;:\u2014\u2013]|\s-\s")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’]*")
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)  # a link's "?" is no question mark
_ASIDE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")  # "(formerly BSkyB)", "[citation needed]"


def classify(text: str) -> Kind:
    """The kind of a plain-text message (Slack markup already removed, see `markup.slack_to_plain`)."""
    text = _ASIDE.sub(" ", _URL.sub(" ", text))
    words = _WORD.findall(text)
    if not words:
        return Kind.NOT_A_QUESTION
    asks = False
    requests = False
    for sentence in _SENTENCE.findall(text):
        sentence = sentence.strip()
        if not _WORD.search(sentence):
            continue
        if "?" in sentence:
            asks = True
            continue
        if sentence.endswith("!"):
            continue  # an exclamation, whatever its first word
        before = 0  # words of the sentence before this clause
        for clause in _CLAUSE_BREAK.split(sentence):
            raw = _WORD.findall(clause)
            if not raw:
                continue
            if _is_interrogative(raw, before):
                asks = True
            elif before == 0 and _is_request(raw):
                requests = True
            before += len(raw)
    if asks:
        return Kind.QUESTION if len(words) >= MIN_QUESTION_WORDS else Kind.REQUEST
    return Kind.REQUEST if requests else Kind.NOT_A_QUESTION


def _norm(word: str) -> str:
    return word.lower().replace("'", "").replace("’", "")


def _is_subject(word: str, *, capitals: bool = True) -> bool:
    """Whether `word` can open a subject: a pronoun or determiner (or a name or number)."""
    return _norm(word) in SUBJECT_STARTERS or (capitals and (word[0].isupper() or word[0].isdigit()))


def _is_interrogative(raw: list[str], before: int) -> bool:
    """Whether a clause, with `before` words of its sentence ahead of it, is a direct question."""
    words = [_norm(w) for w in raw]
    if len(words) > 1 and words[0] in PREPOSITIONS and words[1] in WH_WORDS:
        raw, words = raw[1:], words[1:]  # "In what year…": the preposition came along
    if len(words) < 2:
        return False
    first, second = words[0], words[1]
    inverted = second in AUXILIARIES and len(raw) > 2 and _is_subject(raw[2])
    if first in WH_CONTRACTIONS:
        return before == 0 or _is_subject(raw[1])
    if first in WH_WORDS:
        if inverted and (before == 0 or first not in SUBJECT_WH or second in DO_AND_MODALS):
            return True  # "When are the talks", "…, what did he say"; not "…, who was a co-chair"
        if before > 0 or second in EXCLAMATIVE_SECOND_WORDS:
            return False  # ", which was launched" (relative), "What a relief" (exclamative)
        if first == "how":
            return second in DEGREE_WORDS or second in AUXILIARIES
        if first in SUBJECT_WH:
            return not _is_subject(raw[1], capitals=False)  # "Who heads…"; not "What he said…"
        return second in AUXILIARIES  # "Why is…"; "When Sky was launched, …" is subordinate
    if first in AUXILIARIES:
        return _is_subject(raw[1]) and before <= MAX_OPENER_WORDS
    return False


def _is_request(raw: list[str]) -> bool:
    """An imperative directive ("tell me…", "please explain…") or an indirect question."""
    words = [_norm(w) for w in raw]
    while words and words[0] in COURTESY:
        words = words[1:]
    if len(words) < 2:
        return False  # "Thanks", "Please": no request without an object
    if words[0] in DIRECTIVE_VERBS:
        return True
    return any(tuple(words[:len(opening)]) == opening for opening in INDIRECT_OPENINGS)
