"""Translation: a source sentence in, its translation out; scored with sacreBLEU BLEU and
chrF of the recipe's search. It is the base behaviour of every task."""

from __future__ import annotations

from seq2seq.tasks.base import Task, register_task


@register_task
class Translation(Task):
    name = "translation"
    verb = "translate"
