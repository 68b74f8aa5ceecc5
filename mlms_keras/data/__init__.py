"""Corpus data: readers for real corpora, the sentence generator and the teacher-corpus builder."""
