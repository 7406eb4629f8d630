"""``dbmis card reissue``, ``dbmis card reconcile`` and ``dbmis sale reverse``: commands call
services only.

Registered as ``card-reissue``, ``card-reconcile`` and ``sale-reverse``; the headless host adds a plugin command
``GROUP-SUB`` to the group ``GROUP`` as ``SUB``.
"""

from __future__ import annotations

import os
import sys

import click

from dbmis_core.clikit import app_and_operator, emit
from dbmis_core.errors import AuthenticationError

SUPERVISOR_PASSWORD_ENV = "DBMIS_SUPERVISOR_PASSWORD"


@click.command("reissue")
@click.argument("account_no")
@click.option("--fee", default=None, help="Fee to take (default: the card.reissue_fee setting; 0 "
              "waives it).")
@click.option("--reason", default="", help="Why the card is replaced (lost, damaged, ...).")
def card_reissue(account_no, fee, reason):
    """Replace ACCOUNT_NO's lost card with the blank card in the reader; it carries the last sale."""
    from dbmis_core.services import reissue

    app, op = app_and_operator()
    r = reissue.reissue_card(app, op, account_no, fee=fee, reason=reason)
    carried = f"sequence {r.sequence} ({r.credit})" if r.sequence else "no sale yet"
    fee_text = f"; fee {r.fee} (receipt {r.fee_receipt_no})" if r.fee_receipt_no else ""
    emit(r, f"replacement card {r.new_uid} issued for {r.account_no} (meter {r.meter_no}), carrying "
            f"{carried}; card {r.old_uid} is lost{fee_text}\n"
            "the customer inserts the new card in the meter once, which then refuses the old card")


def _supervisor(app, login: str | None):
    """The approving supervisor, authenticated here: password from DBMIS_SUPERVISOR_PASSWORD or
    asked for (never on the command line)."""
    if not login:
        return None
    pw = os.environ.get(SUPERVISOR_PASSWORD_ENV)
    if pw is None:
        if not sys.stdin.isatty():
            raise AuthenticationError(f"supervisor {login}'s password is needed: set "
                                      f"{SUPERVISOR_PASSWORD_ENV} or run interactively")
        pw = click.prompt(f"Password of supervisor {login}", hide_input=True)
    return app.login(login, pw)


@click.command("reverse")
@click.argument("vend_id", type=int)
@click.option("--reason", required=True, help="Why the sale is reversed.")
@click.option("--supervisor", "supervisor", default=None,
              help=f"Approving supervisor's login (password: {SUPERVISOR_PASSWORD_ENV} or asked). "
                   "Not needed when the operator may reverse sales.")
def sale_reverse(vend_id, reason, supervisor):
    """Reverse sale VEND_ID while its credit is still unloaded on the card in the reader, and
    refund the amount paid."""
    from dbmis_core.services import reversal

    app, op = app_and_operator()
    approver = _supervisor(app, supervisor)
    r = reversal.reverse_sale(app, op, vend_id, reason, supervisor=approver)
    emit(r, f"sale {r.vend_id} (sequence {r.sequence}) reversed for {r.account_no}; refund "
            f"{r.refund} (receipt {r.refund_receipt_no}), approved by {r.approved_by}")


@click.command("reconcile")
def card_reconcile():
    """Settle unfinished sales, reversals and a card reissue with the card in the reader."""
    from dbmis_core.services import reissue

    app, op = app_and_operator()
    reissued, sales = reissue.reconcile_card(app, op)
    data = {"reissues": [{"reissue_id": r.reissue_id, "state": r.state, "card": r.new_uid,
                          "note": r.note} for r in reissued],
            "sales": [{"vend_id": i, "state": s} for i, s in sales]}
    lines = [f"reissue {r.reissue_id} (card {r.new_uid}): {r.state}" for r in reissued]
    lines += [f"sale {i}: {s}" for i, s in sales]
    emit(data, "\n".join(lines) or "nothing to settle")
