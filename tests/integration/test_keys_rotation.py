"""The card master secret: file permissions, rotation (new cards new version, old cards still work),
and its journey through backups only encrypted."""

from __future__ import annotations

import os
import stat
from decimal import Decimal

import pytest
from sqlalchemy import select

from dbmis_core.errors import ConfigError, ValidationError
from dbmis_core.keys import KeyStore, file_modes
from dbmis_core.services import backup, cards, vending
from dbmis_core.storage.models import CardRow
from dbmis_sim.meter import MeterSimulator

PASSPHRASE = "correct horse battery staple"


def test_key_file_is_private(app):
    path = app.config.master_secret_file
    assert file_modes(path) == (0o600, 0o700)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="readable by others"):
        KeyStore.load(path)


def test_rotation_adds_a_version_atomically_and_keeps_the_old_ones(tmp_path):
    path = tmp_path / "keys" / "master.key"
    store = KeyStore.create(path)
    v1_meter_key = store.meter_key("000020240001")
    assert store.rotate(path) == 2
    assert store.current_version == 2 and store.versions == (1, 2)
    on_disk = KeyStore.load(path)
    assert on_disk.current_version == 2 and on_disk.versions == (1, 2)
    assert on_disk.meter_key("000020240001", 1) == v1_meter_key
    assert on_disk.meter_key("000020240001") != v1_meter_key
    assert sorted(p.name for p in path.parent.iterdir()) == ["master.key"]  # no temp file left
    assert file_modes(path) == (0o600, 0o700)
    # a second process that still holds version 1 only: its rotation keeps version 2 as well
    stale = KeyStore({1: store._secrets[1]}, 1)
    assert stale.rotate(path) == 3
    assert KeyStore.load(path).versions == (1, 2, 3)


def test_rotation_refuses_a_foreign_key_file(tmp_path):
    path = tmp_path / "keys" / "master.key"
    KeyStore.create(path)
    other = KeyStore.create(tmp_path / "other" / "master.key")
    before = path.read_bytes()
    with pytest.raises(ConfigError, match="another secret"):
        other.rotate(path)
    assert path.read_bytes() == before


def _meter(app, meter_no: str, version: int, where: str = "meters") -> MeterSimulator:
    return MeterSimulator.provision(app.config.home / where / f"{meter_no}.json", meter_no,
                                    app.keys.meter_key(meter_no, version))


def test_cards_of_both_key_versions_read_and_vend(demo, admin):
    demo.reader.new_card()
    old_uid = cards.issue_user_card(demo, admin, "100001")
    assert demo.keys.rotate(demo.config.master_secret_file) == 2
    new_uid = demo.reader.new_card()
    assert cards.issue_user_card(demo, admin, "100002") == new_uid
    with demo.uow() as uow:
        versions = dict(uow.session.execute(select(CardRow.uid, CardRow.key_version)).all())
    assert versions == {old_uid: 1, new_uid: 2}
    for uid, account, version in ((old_uid, "100001", 1), (new_uid, "100002", 2)):
        demo.reader.insert(uid)
        r = vending.vend(demo, admin, account, "20.00")
        report = cards.read_card(demo, admin)
        assert report.image.header.key_version == version
        assert report.image.vend.sequence == 1 and report.image.vend.credit == r.credit
        # the same meter provisioned with the other version's key refuses the card
        wrong = _meter(demo, r.meter_no, 3 - version, where="wrong-key")
        with demo.reader.connect() as conn:
            refused = wrong.insert(conn, demo.card_format)
        assert not refused.accepted and "refused" in refused.message
        sim = _meter(demo, r.meter_no, version)
        with demo.reader.connect() as conn:
            loaded = sim.insert(conn, demo.card_format)
        assert loaded.accepted and loaded.applied == r.credit
    # a restarted program (fresh key store from the file) still reads both cards
    demo.__dict__.pop("keys")
    demo.__dict__.pop("card_format")
    for uid in (old_uid, new_uid):
        demo.reader.insert(uid)
        assert cards.read_card(demo, admin).registered
    demo.reader.insert(old_uid)
    r2 = vending.vend(demo, admin, "100001", "10.00")
    assert r2.sequence == 2 and r2.energy > Decimal("0")


def test_encrypted_key_round_trip(tmp_path):
    store = KeyStore.create(tmp_path / "k" / "master.key")
    blob = store.encrypt(PASSPHRASE)
    assert store.to_json().encode() not in blob
    assert all(s.hex().encode() not in blob for s in store._secrets.values())
    assert KeyStore.decrypt(blob, PASSPHRASE).to_json() == store.to_json()
    with pytest.raises(ValidationError, match="wrong passphrase"):
        KeyStore.decrypt(blob, "not the passphrase at all")
    with pytest.raises(ValidationError, match="at least"):
        store.encrypt("short")


def test_backups_carry_the_key_only_encrypted_and_restore_decrypts_it(demo, admin, monkeypatch):
    keyfile = demo.config.master_secret_file
    assert not backup.take(demo, admin).key_included  # no passphrase configured: no key
    monkeypatch.setenv(backup.PASSPHRASE_ENV, PASSPHRASE)
    info = backup.take(demo, admin)
    assert info.key_included
    path = backup.folder(demo) / info.file
    secrets_hex = [k.hex().encode() for k in demo.keys._secrets.values()]
    for f in backup.folder(demo).iterdir():
        data = f.read_bytes()
        assert not any(h in data for h in secrets_hex), f.name
        assert not any(k in data for k in demo.keys._secrets.values()), f.name
    enc = path.with_name(path.name + ".key.enc")
    assert stat.S_IMODE(enc.stat().st_mode) == 0o600
    original = keyfile.read_bytes()
    keyfile.unlink()  # the workstation lost its key file

    with pytest.raises(ValidationError, match="wrong passphrase"):
        backup.restore(demo, admin, info.file, confirm=True, key_passphrase="wrong passphrase!!")
    assert not keyfile.exists()
    assert [b.kind for b in backup.list_backups(demo, admin)].count("safety") == 0

    r = backup.restore(demo, admin, info.file, confirm=True, key_passphrase=PASSPHRASE)
    assert r.keys_restored == (1,)
    assert KeyStore.load(keyfile).to_json() == KeyStore.decrypt(enc.read_bytes(), PASSPHRASE).to_json()
    assert KeyStore.load(keyfile).to_json() == original.decode()
    assert file_modes(keyfile) == (0o600, 0o700)


def test_after_rotation_an_installed_meter_keeps_its_key_version(demo, admin):
    """A meter cannot learn a new key from a card: its replacement card after a rotation uses the
    version the meter was keyed with, and loads; a meter whose first card comes later gets v2."""
    from dbmis_core.services import reissue

    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100001")
    vending.vend(demo, admin, "100001", "20.00")
    assert demo.keys.rotate(demo.config.master_secret_file) == 2
    demo.reader.new_card()
    reissue.reissue_card(demo, admin, "100001", reason="lost")
    report = cards.read_card(demo, admin)
    assert report.image.header.key_version == 1
    sim = _meter(demo, "000020240001", 1)
    with demo.reader.connect() as conn:
        assert sim.insert(conn, demo.card_format).applied == Decimal(report.image.vend.credit)
    demo.reader.new_card()
    cards.issue_user_card(demo, admin, "100003")
    assert cards.read_card(demo, admin).image.header.key_version == 2
