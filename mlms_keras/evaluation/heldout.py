"""Held-out sentences for judging a voice: text the teacher-corpus grammars can never produce.

A voice trained on the teacher corpus has heard the sentences of `mlms_keras.data.sentences`' grammars; judging it
on them would flatter it. Every sentence here uses words outside its language's grammar vocabulary (at least
`MIN_UNSEEN_WORDS`), so no grammar can generate it; `unseen_words` proves that per sentence, and
`tests/evaluation/test_heldout.py` checks every sentence. Languages beyond the paper's eight have no grammar (the
corpus takes word-frequency salad there), so any real sentence is held out; the few listed below cover common
additions, and `read_sentence_file` takes your own for any language.

A sentence file (`mlms eval-voice --sentences FILE`) is UTF-8 text, one `language|sentence` a line; blank lines and
lines starting with `#` are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlms_keras.data.sentences import GRAMMAR_FOR_LANGUAGE, vocabulary

__all__ = ["HELDOUT_SENTENCES", "MIN_UNSEEN_WORDS", "heldout_sentences", "read_sentence_file", "unseen_words"]

#: Fewest words a held-out sentence must have outside its grammar's vocabulary.
MIN_UNSEEN_WORDS = 3

#: language code -> sentences, the first two of which `heldout_sentences(code, 2)` returns.
HELDOUT_SENTENCES: dict[str, tuple[str, ...]] = {
    "en-us": (
        "The old lighthouse keeper painted his boat bright yellow last summer.",
        "Could you please remind me where we parked the rental truck?",
        "Several hungry pelicans were circling above the fishing harbor.",
        "My neighbor grows tomatoes, peppers and pumpkins behind her garage.",
    ),
    "en-gb": (
        "We queued outside the chemist for ages before the shutters opened.",
        "Would you mind fetching another kettle from the cupboard upstairs?",
        "The orchestra rehearsed quietly while thunder rumbled over the valley.",
        "Grandmother knitted woollen jumpers for every cousin this winter.",
    ),
    "fr": (
        "Le boulanger du village ouvre sa boutique avant le lever du soleil.",
        "Pourriez-vous me prêter votre parapluie jusqu'à demain matin?",
        "Les mouettes tournent au-dessus du port pendant la tempête.",
        "Ma tante cultive des framboises et des courgettes derrière sa grange.",
    ),
    "it": (
        "Il pescatore ripara le reti sulla spiaggia prima del tramonto.",
        "Potresti spegnere la lavatrice quando finisce il programma?",
        "Le rondini costruiscono i nidi sotto il tetto della stalla.",
        "Mio nonno coltiva pomodori, zucchine e basilico nell'orto.",
    ),
    "de": (
        "Meine Schwester hat gestern einen alten Roman im Keller gefunden.",
        "Könntest du bitte das Fenster schließen, bevor es regnet?",
        "Die Feuerwehr löschte den Brand in der verlassenen Scheune.",
        "Unser Nachbar pflanzt jedes Frühjahr Tulpen entlang des Zauns.",
    ),
    "es": (
        "El pescador remienda sus redes en el muelle antes del amanecer.",
        "¿Podrías apagar la lavadora cuando termine el programa?",
        "Las golondrinas construyen sus nidos bajo el tejado del granero.",
        "Mi abuela prepara mermelada de ciruelas cada otoño.",
    ),
    "pl": (
        "Rybak naprawia sieci na plaży przed zachodem słońca.",
        "Czy mógłbyś wyłączyć pralkę, kiedy skończy się program?",
        "Jaskółki budują gniazda pod dachem starej stodoły.",
        "Moja babcia robi konfitury ze śliwek każdej jesieni.",
    ),
    "pt-br": (
        "O pescador conserta as redes na praia antes do pôr do sol.",
        "Você poderia desligar a lavadora quando terminar o programa?",
        "As andorinhas constroem ninhos debaixo do telhado do celeiro.",
        "Minha avó prepara geleia de goiaba todos os outonos.",
    ),
    "nl": (
        "De visser repareert zijn netten op het strand voor zonsondergang.",
        "Kun je de wasmachine uitzetten wanneer het programma klaar is?",
    ),
    "sv": (
        "Fiskaren lagar sina nät på stranden före solnedgången.",
        "Kan du stänga av tvättmaskinen när programmet är klart?",
    ),
}


def unseen_words(sentence: str, language: str) -> set[str]:
    """The lower-cased words of `sentence` that the language's grammar cannot emit (all of them for a language
    without a grammar). Punctuation at word edges is ignored."""
    words = {word.strip(".,;:!?¿¡\"'«»()").lower() for word in sentence.split()}
    words.discard("")
    if language not in GRAMMAR_FOR_LANGUAGE:
        return words
    return words - vocabulary(language)


def heldout_sentences(language: str, count: int = 2) -> list[str]:
    """The first `count` built-in held-out sentences of `language`.

    Raises:
        ValueError: no built-in sentences for `language` (the message lists those that have some and says how to
            give your own), or fewer than `count`.
    """
    sentences = HELDOUT_SENTENCES.get(language)
    if sentences is None:
        raise ValueError(
            f"no built-in held-out sentences for language {language!r} (built in: {', '.join(HELDOUT_SENTENCES)}); "
            "give your own with --sentences FILE (lines `language|sentence`)"
        )
    if count > len(sentences):
        raise ValueError(f"{count} sentences asked for {language!r}, but {len(sentences)} are built in")
    return list(sentences[:count])


def read_sentence_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """`language -> sentences` of a sentence file (module docstring), in file order.

    Raises:
        ValueError: a line without `|` or with an empty side, naming the file and line number; text that is not
            UTF-8.
        OSError: the file cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"--sentences {path}: not UTF-8 text ({error})") from error
    sentences: dict[str, list[str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        language, separator, sentence = (part.strip() for part in line.partition("|"))
        if not separator or not language or not sentence:
            raise ValueError(f"--sentences {path}, line {number}: expected `language|sentence`, got {line[:60]!r}")
        sentences.setdefault(language, []).append(sentence)
    if not sentences:
        raise ValueError(f"--sentences {path}: no sentences (lines `language|sentence`)")
    return sentences
