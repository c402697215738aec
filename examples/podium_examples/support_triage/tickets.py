"""Support tickets: loading and checking the CSV files the triage workflow reads."""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from podium import InputDataError

DATA = Path(__file__).parent / "data"
TRAIN_CSV = DATA / "train.csv"
TEST_CSV = DATA / "test.csv"
COLUMNS = ("text", "category")


@dataclass(frozen=True)
class Ticket:
    """A customer's message. `category` is the dataset's label, used only to score the classifier."""

    id: str
    customer: str
    text: str
    category: str


def load_tickets(path: Path) -> list[Ticket]:
    """Read a `text,category` CSV; a ticket's id is its file's name, row and a digest of what it says (so the same
    ticket is the same run again, and another file's never is). Raises InputDataError saying what is wrong."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise InputDataError(
                    f"{path}: the header is {','.join(reader.fieldnames or []) or 'missing'}, "
                    f"but a ticket file needs exactly the columns {','.join(COLUMNS)}.",
                    path=str(path),
                )
            tickets = []
            for row_number, row in enumerate(reader, start=1):
                text, category = (row.get("text") or "").strip(), (row.get("category") or "").strip()
                if not text or not category or None in row:
                    raise InputDataError(
                        f"{path}, line {row_number + 1}: a ticket needs a non-empty text and category and "
                        "nothing else (quote texts that contain commas).",
                        path=str(path),
                        line=row_number + 1,
                    )
                content = hashlib.sha256(f"{text}\n{category}".encode()).hexdigest()[:10]  # another file, another id
                ticket_id = f"{path.stem}-{row_number}-{content}"
                tickets.append(Ticket(ticket_id, f"customer-{row_number:05d}", text, category))
    except FileNotFoundError:
        raise InputDataError(f"ticket file {path} does not exist.", path=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).", path=str(path)) from None
    except (OSError, csv.Error) as exc:  # a folder, no permission, a field over csv's 128 KB limit
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputDataError(f"cannot read the ticket file {path} ({why}); give a text,category CSV file.") from None
    if not tickets:
        raise InputDataError(f"{path} holds no tickets, only a header.", path=str(path))
    return tickets


def sample(tickets: list[Ticket], n: int, seed: int) -> list[Ticket]:
    """`n` tickets drawn at random but reproducibly: the same seed gives the same tickets."""
    if n < 1:
        raise InputDataError(f"the number of tickets must be at least 1 (got {n}).")
    return random.Random(seed).sample(tickets, min(n, len(tickets)))
