"""Write bot/answering/irregular_forms.json: the irregular verb and noun forms of English whose
Snowball stem differs from their lemma's ("said" -> "say", "told" -> "tell", "children" ->
"child"), taken from the lemma exception tables of spaCy's en_core_web_sm 3.8.0 (MIT, Explosion;
the package qabot already installs for its entities).

    .venv/bin/python -m bot.evaluation.build_irregular

Snowball stems inflections by their endings, so "says" and "saying" meet "say" but "said" does
not: a question asking what someone *said* in other words ("What did Putin say?") found none of
its keywords in the sentence that answers it. Build-time only: the request path reads the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from embeddings.entities import MODEL_PACKAGE, ENTITY_MODEL
from embeddings.keyword import tokenize

from ..answering.irregular import FORMS_FILE

# Only these parts of speech: comparatives of adjectives and adverbs ("better" -> "good"/"well")
# would join words a question tells apart.
PARTS = ("verb", "noun")


def irregular_stems() -> dict[str, str]:
    """Stem of an irregular form -> stem of its lemma, where the two differ (the first lemma)."""
    import importlib

    from spacy.lookups import Lookups

    package = importlib.import_module(MODEL_PACKAGE)
    folder = next(Path(str(package.__file__)).parent.glob("*/lemmatizer/lookups"))
    exceptions = Lookups().from_disk(folder).get_table("lemma_exc")
    out: dict[str, str] = {}
    for part in PARTS:
        for form, lemmas in sorted(exceptions[part].items()):
            if not lemmas or " " in form or not form.isalpha():
                continue
            stems = tokenize([form, lemmas[0]], stopwords=frozenset())
            if len(stems[0]) == 1 and len(stems[1]) == 1 and stems[0][0] != stems[1][0]:
                out.setdefault(stems[0][0], stems[1][0])
    return out


def main() -> None:
    forms = irregular_stems()
    FORMS_FILE.write_text(json.dumps({
        "credit": f"From the lemma exception tables ({', '.join(PARTS)}) of {ENTITY_MODEL}: spaCy's "
                  "en_core_web_sm 3.8.0 by Explosion, MIT licence. Rebuild: python -m bot.evaluation.build_irregular",
        "stems": dict(sorted(forms.items())),
    }, indent=0, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {FORMS_FILE}: {len(forms)} irregular stems")


if __name__ == "__main__":
    main()
