from __future__ import annotations

import pytest

from lab.api.passwords import PasswordHasher


def test_the_default_cost_is_scrypts_interactive_recommendation():
    hasher = PasswordHasher()
    assert (hasher.n, hasher.r, hasher.p) == (2**14, 8, 1)
    stored = hasher.hash("correct horse")
    assert stored.startswith("scrypt$16384$8$1$")
    assert hasher.verify("correct horse", stored)
    assert not hasher.verify("correct horsf", stored)


def test_each_hash_has_its_own_salt():
    hasher = PasswordHasher(n=2**4)
    first, second = hasher.hash("same"), hasher.hash("same")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert hasher.verify("same", first) and hasher.verify("same", second)


def test_the_stored_form_carries_its_parameters():
    old = PasswordHasher(n=2**4).hash("pw")
    assert PasswordHasher(n=2**5).verify("pw", old)  # raising the cost keeps old hashes valid


@pytest.mark.parametrize("stored", ["", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA==$AA==",
                                    "scrypt$16$8$1$!!!$AA=="])
def test_a_malformed_stored_hash_never_verifies(stored):
    assert not PasswordHasher(n=2**4).verify("pw", stored)


def test_the_password_is_not_in_the_stored_form():
    stored = PasswordHasher(n=2**4).hash("hunter22")
    assert "hunter22" not in stored
