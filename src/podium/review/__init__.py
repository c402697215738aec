"""Humans on the loop: exceptions that wait durably for a person's decision."""

from podium.review._queue import DEFAULT_DEADLINE_SECONDS, Decision, ReviewRequest, Reviews, request_review

__all__ = ["DEFAULT_DEADLINE_SECONDS", "Decision", "ReviewRequest", "Reviews", "request_review"]
