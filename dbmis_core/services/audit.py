"""The audit log: every change to money, cards, customers, operators and settings, append only and
hash chained (docs/decisions/0015-audit-log.md).

One chain per sales station: record n of a station holds ``prev_hash`` = hash of record n - 1 and
``hash`` = sha256(prev_hash || canonical JSON of its fields). Appending locks the station's row
(``stations.audit_seq``/``audit_head``), so records of one station are numbered 1, 2, 3... without
gaps even when several processes write at once, while stations never wait for each other. The
station row keeps the newest hash, so a removed last record is found too. Database triggers refuse
UPDATE and DELETE on ``audit_log``; ``verify`` finds what someone who drops them changes anyway.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum

import attrs
from sqlalchemy import Connection, bindparam, insert, select, text, update

from ..errors import BusinessRuleError, ValidationError
from ..storage.models import AuditRow, StationRow
from ..storage.precompiled import Precompiled
from .auth import Operator, Perm

GENESIS = ""  # prev_hash of a station's first record

_BUMP = (update(StationRow).where(StationRow.code == bindparam("station_code"))
         .values(audit_seq=StationRow.audit_seq + 1)
         .returning(StationRow.audit_seq, StationRow.audit_head))
_SET_HEAD = (update(StationRow).where(StationRow.code == bindparam("station_code"))
             .values(audit_head=bindparam("head")))
INSERT = Precompiled(insert(AuditRow), keys=("station", "seq", "at", "operator", "kind",
                                             "subject", "details", "prev_hash", "hash"))
_REGISTER = text("INSERT INTO stations (code, name, next_receipt, audit_seq, audit_head) "
                 "VALUES (:code, :code, 1, 0, '') ON CONFLICT (code) DO NOTHING")


_AS_IS = frozenset({str, int, bool, type(None)})


def _plain(value):
    """JSON-ready copy of ``value``: money and energy as strings (never floats), times in ISO."""
    kind = type(value)
    if kind in _AS_IS:  # the common cases first: every sale writes a dozen of them
        return value
    if kind is Decimal:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        raise ValidationError("audit details take Decimal, not float")
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _at_text(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(station: str, seq: int, at: datetime, operator: str, kind: str, subject: str,
              details: dict) -> str:
    """The exact text hashed for a record (sorted keys, no spaces, UTF-8)."""
    return _CANONICAL.encode({"station": station, "seq": seq, "at": _at_text(at),
                              "operator": operator, "kind": kind, "subject": subject,
                              "details": details})


def chain_hash(prev_hash: str, station: str, seq: int, at: datetime, operator: str, kind: str,
               subject: str, details: dict) -> str:
    text = prev_hash + canonical(station, seq, at, operator, kind, subject, details)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _login(op) -> str:
    if op is None:
        return "system"
    return op if isinstance(op, str) else op.login


def _connection(uow) -> Connection:
    """The caller's transaction: a unit of work, or a bare Connection (archive.py)."""
    return uow if isinstance(uow, Connection) else uow.connection


def _station_of(uow, station: str | None) -> str:
    if station:
        return station
    station = getattr(uow, "station", None)
    if station:
        return station
    code = _connection(uow).scalar(select(StationRow.code).order_by(StationRow.id).limit(1))
    if code is None:
        raise BusinessRuleError("no sales station is registered; run 'dbmis init'")
    return code


def build(station: str, seq: int, prev_hash: str | None, op, kind: str, subject: str,
          details: dict | None = None) -> dict:
    """Record ``seq`` of ``station``'s chain after ``prev_hash``, as the parameters of INSERT
    (its "hash" is the chain's new head). Writing it, and counting ``seq`` and storing the head
    on the station row whose lock the caller holds, is the caller's: a sale sends all of it in
    one batch."""
    at = datetime.now(UTC)
    plain = _plain(details or {})
    login = _login(op)
    subject = str(subject or "")
    prev_hash = prev_hash or GENESIS
    h = chain_hash(prev_hash, station, seq, at, login, kind, subject, plain)
    return dict(station=station, seq=seq, at=at, operator=login, kind=kind, subject=subject,
                details=plain, prev_hash=prev_hash, hash=h)


def append(uow, station: str, seq: int, prev_hash: str, op, kind: str, subject: str,
           details: dict | None = None) -> str:
    """Write record ``seq`` after ``prev_hash`` (the caller holds the station row's lock and has
    already counted ``seq`` on it); returns the new head hash, which the caller stores."""
    entry = build(station, seq, prev_hash, op, kind, subject, details)
    INSERT.execute(_connection(uow), entry)
    return entry["hash"]


def record(uow, op, kind: str, subject: str, details: dict | None = None, *,
           station: str | None = None) -> None:
    """Append one audit record in the caller's transaction (a unit of work or a Connection; it
    commits or rolls back with the change it describes). ``op`` is the Operator (or a login, or None for the system itself);
    ``details`` is JSON-able, with "before"/"after" where something changed; never a password."""
    if not kind:
        raise ValidationError("an audit record needs a kind")
    code = _station_of(uow, station)
    conn = _connection(uow)
    row = conn.execute(_BUMP, {"station_code": code}).first()
    if row is None:  # a station configured but never registered starts its chain now
        conn.execute(_REGISTER, {"code": code})
        row = conn.execute(_BUMP, {"station_code": code}).first()
    head = append(uow, code, row.audit_seq, row.audit_head or GENESIS, op, kind, subject, details)
    conn.execute(_SET_HEAD, {"station_code": code, "head": head})


# -- verification -------------------------------------------------------------------------------

@attrs.frozen
class Finding:
    station: str
    seq: int | None
    problem: str        # "altered", "removed", "reordered", "head"
    detail: str


@attrs.frozen
class StationChain:
    station: str
    records: int
    head_seq: int
    head_hash: str


@attrs.frozen
class VerifyResult:
    chains: tuple[StationChain, ...]
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not self.findings


def _record_hash(r, seq: int) -> str:
    details = r.details if isinstance(r.details, dict) else {}
    return chain_hash(r.prev_hash, r.station, seq, r.at, r.operator, r.kind, r.subject, details)


def _positions(rows: list, head_seq: int) -> dict[int, int]:
    """Where each record was written (its original seq), rebuilt from the prev_hash links alone.

    The links from the genesis give 1, 2, 3...; a fragment whose first link points at nothing (a
    record before it was removed) gets the seq its first record's hash verifies with, so records
    renumbered to hide a removal are still placed."""
    after: dict[str, list] = {}
    for r in rows:
        after.setdefault(r.prev_hash, []).append(r)
    hashes = {r.hash for r in rows}
    pos: dict[int, int] = {}

    def walk(first, n: int) -> None:
        r = first
        while r is not None and r.id not in pos:
            pos[r.id] = n
            n += 1
            nxt = after.get(r.hash, [])
            r = nxt[0] if len(nxt) == 1 else None

    if after.get(GENESIS):
        walk(after[GENESIS][0], 1)
    for r in rows:
        if r.id in pos or r.prev_hash in hashes or r.prev_hash == GENESIS:
            continue
        for n in range(r.seq, max(head_seq, r.seq) + 1 + 64):
            if _record_hash(r, n) == r.hash:
                walk(r, n)
                break
    return pos


def _span(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


def _verify_chain(station: str, rows: list, head_seq: int, head_hash: str) -> list[Finding]:
    """Findings for one station's records (``rows`` in seq order)."""
    out: list[Finding] = []
    flagged: set[int] = set()
    pos = _positions(rows, head_seq)
    taken = set(pos.values())
    by_hash = {r.hash: r for r in rows}
    id_order = sorted(r.id for r in rows)

    def flag(seq, problem, detail):
        flagged.add(seq)
        out.append(Finding(station, seq, problem, detail))

    prev = None
    for i, r in enumerate(rows):
        before = prev.seq if prev else 0
        written = pos.get(r.id)
        if r.seq > before + 1:  # a gap in the numbering
            flag(before + 1, "removed", f"record(s) {_span(before + 1, r.seq - 1)} missing")
        elif written is not None and prev is not None and pos.get(prev.id) is not None:
            # renumbered to close the gap left by a removal: original numbers nobody holds
            gone = [n for n in range(pos[prev.id] + 1, written) if n not in taken]
            if gone:
                flag(r.seq, "removed", f"record(s) written as {_span(gone[0], gone[-1])} missing; "
                     "the records after them were renumbered")
        if _record_hash(r, r.seq) != r.hash:
            if written is not None and written != r.seq:
                flag(r.seq, "reordered", f"record {r.seq} ({r.kind} {r.subject}) was written as "
                     f"record {written}")
            else:
                flag(r.seq, "altered", f"record {r.seq} ({r.kind} {r.subject}) does not match its "
                     "hash: its content was changed")
        elif r.seq not in flagged and (prev is None or prev.seq not in flagged):
            want = prev.hash if prev else GENESIS
            if r.prev_hash != want:
                earlier = by_hash.get(r.prev_hash)
                if earlier is not None:
                    flag(r.seq, "reordered", f"record {r.seq} follows record {earlier.seq} in the "
                         f"chain, not record {before}")
                elif prev is not None and r.seq == before + 1:
                    flag(before, "altered", f"record {before} ({prev.kind} {prev.subject}) was "
                         f"rewritten with a new hash: record {r.seq} does not link to it")
                elif prev is None and r.seq == 1:
                    flag(1, "altered", "record 1 does not start the chain")
        if r.seq not in flagged and id_order[i] != r.id:
            flag(r.seq, "reordered", f"record {r.seq} was stored out of order")
        prev = r
    last_seq = rows[-1].seq if rows else 0
    last_hash = rows[-1].hash if rows else GENESIS
    if head_seq > last_seq:
        flag(last_seq + 1, "removed", f"record(s) {_span(last_seq + 1, head_seq)} at the end of "
             f"the chain are missing (the station's head is record {head_seq})")
    elif head_seq < last_seq:
        flag(head_seq + 1, "head", f"record(s) {_span(head_seq + 1, last_seq)} were added outside "
             "the program, or the station's head was rewound")
    elif last_hash != (head_hash or GENESIS):
        flag(last_seq, "head", f"the last record {last_seq} does not match the station's head "
             "hash: it was rewritten or replaced")
    return out


def verify(app, op: Operator) -> VerifyResult:
    """Recompute every station's chain; findings say which record was altered, removed or
    reordered."""
    op.require(Perm.VIEW_AUDIT)
    chains, findings = [], []
    with app.uow() as uow:
        s = uow.session
        heads = {r.code: (r.audit_seq or 0, r.audit_head or GENESIS)
                 for r in s.execute(select(StationRow.code, StationRow.audit_seq,
                                           StationRow.audit_head))}
        stations = set(heads) | set(s.scalars(select(AuditRow.station).distinct()))
        for station in sorted(stations):
            rows = list(s.execute(select(AuditRow).where(AuditRow.station == station)
                                  .order_by(AuditRow.seq, AuditRow.id)).scalars())
            head_seq, head_hash = heads.get(station, (0, GENESIS))
            if station not in heads:
                findings.append(Finding(station, None, "head",
                                        f"records of station {station}, which is not registered"))
            findings.extend(_verify_chain(station, rows, head_seq, head_hash))
            chains.append(StationChain(station, len(rows), head_seq, head_hash))
    return VerifyResult(tuple(chains), tuple(findings))


# -- viewer --------------------------------------------------------------------------------------

@attrs.frozen
class AuditEntry:
    station: str
    seq: int
    at: datetime
    operator: str
    kind: str
    subject: str
    details: dict

    def as_dict(self) -> dict:
        return {"station": self.station, "seq": self.seq, "at": self.at.isoformat(),
                "operator": self.operator, "kind": self.kind, "subject": self.subject,
                "details": self.details}


def search(app, op: Operator, *, operator: str | None = None, since: datetime | None = None,
           until: datetime | None = None, kind: str | None = None, subject: str | None = None,
           station: str | None = None, limit: int = 1000) -> list[AuditEntry]:
    """Newest first. ``kind`` matches exactly or as a prefix ending in "." ("card" finds
    "card.issue"); ``subject`` is a case-insensitive substring; ``until`` is exclusive."""
    op.require(Perm.VIEW_AUDIT)
    q = select(AuditRow)
    if operator:
        q = q.where(AuditRow.operator == operator.strip())
    if since is not None:
        q = q.where(AuditRow.at >= since)
    if until is not None:
        q = q.where(AuditRow.at < until)
    if kind:
        k = kind.strip()
        q = q.where((AuditRow.kind == k) | AuditRow.kind.startswith(k + ".", autoescape=True))
    if subject:
        q = q.where(AuditRow.subject.icontains(subject.strip(), autoescape=True))
    if station:
        q = q.where(AuditRow.station == station)
    q = q.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)
    with app.uow() as uow:
        return [AuditEntry(r.station, r.seq, r.at, r.operator, r.kind, r.subject,
                           r.details if isinstance(r.details, dict) else {})
                for r in uow.session.scalars(q)]


def kinds(app, op: Operator) -> list[str]:
    """Kinds present in the log (for the viewer's filter)."""
    op.require(Perm.VIEW_AUDIT)
    with app.uow() as uow:
        return sorted(uow.session.scalars(select(AuditRow.kind).distinct()))
