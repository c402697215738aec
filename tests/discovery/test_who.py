"""Who a sighting is: the log's own user first, then the address book's lease at the sighting's time, then the
address; the people directory gives a known person's team; pseudonyms are keyed, stable and owner-only."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from podium.discovery import Sighting
from podium.discovery._who import AddressBook, Attribution, Pseudonyms
from podium.errors import InputDataError


def at(moment: str) -> float:
    return dt.datetime.fromisoformat(moment).replace(tzinfo=dt.UTC).timestamp()


def sighting(source: str, moment: str, user: str | None = None) -> Sighting:
    seen = at(moment)
    return Sighting(source, user, "openai", "chat.openai.com", moment[:10], 1, 10, 20, seen, seen)


def users_csv(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "users.csv"
    path.write_text("\n".join(["address,person,department,valid_from,valid_to", *rows]) + "\n", encoding="utf-8")
    return path


def test_a_reused_address_is_whoever_held_the_lease_then(tmp_path: Path) -> None:
    book = AddressBook.read(
        users_csv(
            tmp_path,
            "10.0.0.5,ana@example.com,sales,2026-03-01,2026-03-08",
            "10.0.0.5,bo@example.com,,2026-03-08T00:00,",  # open-ended; valid_to is exclusive, so no overlap
            "2001:DB8:0:0::1,cy@example.com,research,,",  # IPv6 spelled long: met by its short form
        )
    )
    who = Attribution(addresses=book)
    assert (who(sighting("10.0.0.5", "2026-03-07T23:59")).user, who(sighting("10.0.0.5", "2026-03-07")).department) == (
        "ana@example.com",
        "sales",
    )
    assert who(sighting("10.0.0.5", "2026-03-08T00:00")).user == "bo@example.com"
    assert who(sighting("10.0.0.5", "2026-02-28T12:00")).user == "10.0.0.5"  # nobody held it then: the address
    assert who(sighting("2001:db8::1", "2026-03-01")).user == "cy@example.com"


def test_overlapping_leases_are_refused_with_their_lines(tmp_path: Path) -> None:
    path = users_csv(
        tmp_path,
        "10.0.0.9,zoe@example.com,ops,2026-01-01,2026-12-31",
        "10.0.0.5,ana@example.com,sales,2026-03-01,2026-03-10",
        "10.0.0.5,bo@example.com,sales,2026-03-09,",
    )
    with pytest.raises(InputDataError, match=r"lines 3 and 4 give 10\.0\.0\.5 to 'ana@example.com' and 'bo@example"):
        AddressBook.read(path)


@pytest.mark.parametrize(
    ("rows", "error"),
    [
        (["10.0.0.5,ana,sales,March 1st,"], "not an ISO 8601 date"),
        ([",ana,,,"], "needs an address and a person"),
    ],
)
def test_a_bad_address_book_says_where(tmp_path: Path, rows: list[str], error: str) -> None:
    with pytest.raises(InputDataError, match=error):
        AddressBook.read(users_csv(tmp_path, *rows))
    (tmp_path / "bad.csv").write_text("ip,name\n10.0.0.1,ana\n", encoding="utf-8")
    with pytest.raises(InputDataError, match="the first line must be the header address,person,department"):
        AddressBook.read(tmp_path / "bad.csv")


def test_the_logs_own_user_wins_and_the_directory_gives_a_department(tmp_path: Path) -> None:
    book = AddressBook.read(users_csv(tmp_path, "10.0.0.5,ana@example.com,sales,,"))
    directory = {"dee@example.com": ("admins", "finance"), "eve@example.com": ("admins",)}
    who = Attribution(addresses=book, teams_of=directory.get)
    named = who(sighting("10.0.0.5", "2026-03-02", user="dee@example.com"))
    assert (named.user, named.department) == ("dee@example.com", "finance")  # admins is a role, not a department
    assert who(sighting("10.0.0.6", "2026-03-02", user="eve@example.com")).department == "admins"
    assert who(sighting("10.0.0.5", "2026-03-02", user="ana@example.com")).department == "sales"
    unknown = who(sighting("10.0.0.7", "2026-03-02"))
    assert (unknown.user, unknown.department) == ("10.0.0.7", None)
    hostile = who(sighting("10.0.0.7", "2026-03-02", user="nul\x00here" + "x" * 500))
    assert hostile.user.startswith("nul\\x00here") and len(hostile.user) == 200  # storable, bounded, literal


def test_pseudonyms_are_keyed_stable_and_owner_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = Pseudonyms.of_home(home)
    key_file = home / "discovery-pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = Pseudonyms.of_home(home)  # another run: the same key from the file
    assert first("ana@example.com") == again("ana@example.com") != first("bo@example.com")
    key = bytes.fromhex(key_file.read_text(encoding="ascii"))
    expected = hmac.new(key, b"ana@example.com", hashlib.sha256).hexdigest()[:20]
    assert first("ana@example.com") == f"u-{expected}"
    assert Pseudonyms.of_home(tmp_path / "other")("ana@example.com") != first("ana@example.com")  # keyed

    who = Attribution(teams_of={"ana@example.com": ("sales",)}.get, pseudonyms=first)
    shown = who(sighting("10.0.0.5", "2026-03-02", user="ana@example.com"))
    assert (shown.user, shown.department) == (first("ana@example.com"), "sales")  # departments stay readable
    assert who(sighting("10.0.0.5", "2026-03-02")).user == first("10.0.0.5")  # an address is pseudonymised too
