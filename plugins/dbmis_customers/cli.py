"""``dbmis account ...`` (changes, meter replacement, closure, the record), ``dbmis debt ...``,
``dbmis inspection ...`` and ``dbmis sale check``. The host already has a ``customer`` group (add,
show, find), so changes to an existing customer live under ``account``."""

from __future__ import annotations

import click

from dbmis_core.clikit import app_and_operator, emit


def _change_dict(c) -> dict:
    return {"id": c.id, "kind": c.kind, "before": c.before, "after": c.after,
            "operator": c.operator, "at": c.at}


def _makeup_dict(m) -> dict | None:
    if m is None:
        return None
    return {"vend_id": m.vend_id, "account_no": m.account_no, "meter_no": m.meter_no,
            "card_uid": m.card_uid, "sequence": m.sequence, "credit": m.credit,
            "state": m.state, "receipt_no": m.receipt_no}


@click.group("account")
def account_group():
    """Change a customer, replace the meter, close the account, show the whole record."""


@account_group.command("change")
@click.argument("account_no")
@click.option("--name")
@click.option("--address")
@click.option("--phone")
@click.option("--category", help="residential, commercial, industrial or agricultural.")
@click.option("--tariff", help="An installed tariff, or 'default'.")
@click.option("--capacity", help="Capacity limit in A ('' removes it).")
@click.option("--capacity-mode", type=click.Choice(["none", "trip", "alarm"]))
@click.option("--note", default="")
def change(account_no, name, address, phone, category, tariff, capacity, capacity_mode, note):
    """Change a customer's details, category, tariff or capacity (each change is recorded)."""
    from dbmis_core.services import customers

    app, op = app_and_operator()
    done = customers.change_customer(app, op, account_no, name=name, address=address, phone=phone,
                                     category=category, tariff=tariff, capacity_amps=capacity,
                                     capacity_mode=capacity_mode, note=note)
    data = [_change_dict(c) for c in done]
    emit(data, "\n".join(f"{d['kind']}: {d['before']} -> {d['after']}" for d in data))


@account_group.command("replace-meter")
@click.argument("account_no")
@click.argument("new_meter_no")
@click.option("--fee", default=None, help="Record a 'meter replacement fee' debt of this amount.")
def replace_meter(account_no, new_meter_no, fee):
    """Install NEW_METER_NO for ACCOUNT_NO; the blank card in the reader becomes the customer's card
    for it, carrying the old meter's remaining credit."""
    from dbmis_core.services import customers

    app, op = app_and_operator()
    r = customers.replace_meter(app, op, account_no, new_meter_no, fee=fee)
    data = {"account_no": r.account_no, "old_meter_no": r.old_meter_no,
            "new_meter_no": r.new_meter_no, "old_card_uid": r.old_card_uid,
            "new_card_uid": r.new_card_uid, "remaining_on_meter": r.remaining.on_meter,
            "unloaded": r.remaining.unloaded, "makeup": _makeup_dict(r.makeup),
            "fee_debt_id": r.fee_debt_id}
    emit(data, f"meter {r.old_meter_no} -> {r.new_meter_no}; new card {r.new_card_uid} carries "
               f"{r.makeup.credit} make-up credit (sequence {r.makeup.sequence}, {r.makeup.state}); "
               f"old card {r.old_card_uid or '-'} retired")


@account_group.command("resend-makeup")
@click.argument("account_no")
def resend_makeup(account_no):
    """Write make-up credit whose record failed again, on ACCOUNT_NO's card in the reader."""
    from dbmis_core.services import customers

    app, op = app_and_operator()
    m = customers.resend_makeup(app, op, account_no)
    emit(_makeup_dict(m), f"make-up credit {m.credit} written (sequence {m.sequence}, {m.state})")


@account_group.command("close")
@click.argument("account_no")
@click.option("--refund", is_flag=True, help="Pay the remaining credit out in cash.")
@click.option("--transfer-to", help="Move the remaining credit to this account (its card in the "
                                    "reader).")
@click.option("--note", default="")
def close(account_no, refund, transfer_to, note):
    """Close ACCOUNT_NO: its meter is removed, its cards and the account closed."""
    from dbmis_core.services import customers

    app, op = app_and_operator()
    c = customers.close_account(app, op, account_no, refund=refund, transfer_to=transfer_to,
                                note=note)
    data = {"account_no": c.account_no, "meter_no": c.meter_no, "remaining": c.remaining.total,
            "value": c.value, "refund_receipt": c.refund_receipt, "transfer_to": c.transfer_to,
            "makeup": _makeup_dict(c.makeup)}
    how = (f"refund {c.value} (receipt {c.refund_receipt})" if refund
           else f"{c.remaining.total} moved to {c.transfer_to} (value {c.value})")
    emit(data, f"account {c.account_no} closed; {how}")


@account_group.command("record")
@click.argument("account_no")
def record(account_no):
    """Everything that happened to ACCOUNT_NO, oldest first."""
    from dbmis_core.services import customers

    app, op = app_and_operator()
    summary = customers.customer_summary(app, op, account_no)
    entries = customers.customer_record(app, op, account_no)
    data = {"customer": summary, "entries": [{"at": e.at, "kind": e.kind, "summary": e.summary,
                                              "ref": e.ref} for e in entries]}
    head = (f"{summary['account_no']} {summary['name']} ({summary['status']}), meter "
            f"{summary['meter_no'] or '-'}, card {summary['card_uid'] or '-'}, tariff "
            f"{summary['tariff']}, debt owed {summary['debt_owed']}")
    emit(data, "\n".join([head] + [f"{e.at:%Y-%m-%d %H:%M:%S} {e.kind:<12} {e.summary}"
                                   for e in entries]))


# -- debts -----------------------------------------------------------------------------------------
@click.group("debt")
def debt_group():
    """Record, list and pay customers' debts (recovered as a share of purchases)."""


def _debt_dict(d) -> dict:
    return {"id": d.id, "account_no": d.account_no, "reason": d.reason, "amount": d.amount,
            "recovered": d.recovered, "owed": d.owed, "share": d.share,
            "created_by": d.created_by, "created_at": d.created_at, "settled_at": d.settled_at}


@debt_group.command("add")
@click.argument("account_no")
@click.argument("amount")
@click.argument("reason")
@click.option("--share", default=None, help="Share of each purchase for this debt (e.g. 0.5); "
                                            "default sales.debt_share.")
def debt_add(account_no, amount, reason, share):
    """Record that ACCOUNT_NO owes AMOUNT for REASON."""
    from dbmis_core.services import debts

    app, op = app_and_operator()
    d = debts.add_debt(app, op, account_no, reason, amount, share=share)
    emit(_debt_dict(d), f"debt {d.id}: {d.account_no} owes {d.amount} for {d.reason}")


@debt_group.command("list")
@click.argument("account_no")
@click.option("--open", "open_only", is_flag=True, help="Only debts not yet paid off.")
def debt_list(account_no, open_only):
    """List ACCOUNT_NO's debts."""
    from dbmis_core.services import debts

    app, op = app_and_operator()
    data = [_debt_dict(d) for d in debts.list_debts(app, op, account_no, open_only)]
    emit(data, "\n".join(f"{d['id']:>4} {d['amount']:>10} owed {d['owed']:>10}  {d['reason']}"
                         for d in data) or "no debts")


@debt_group.command("pay")
@click.argument("account_no")
@click.argument("amount")
@click.option("--debt", "debt_id", type=int, default=None, help="Pay only this debt.")
def debt_pay(account_no, amount, debt_id):
    """Take AMOUNT in cash towards ACCOUNT_NO's debts, oldest first."""
    from dbmis_core.services import debts

    app, op = app_and_operator()
    p = debts.pay_debt(app, op, account_no, amount, debt_id)
    emit({"receipt_no": p.receipt_no, "paid": p.paid,
          "parts": [{"debt_id": i, "amount": a} for i, a in p.parts]},
         f"{p.paid} paid, receipt {p.receipt_no}")


# -- inspection notices ----------------------------------------------------------------------------
@click.group("inspection")
def inspection_group():
    """Inspection notices raised at the counter (wrong meter, sequence ahead, forged record)."""


@inspection_group.command("list")
@click.option("--all", "all_", is_flag=True, help="Closed notices too.")
@click.option("--account", default=None)
def inspection_list(all_, account):
    from dbmis_core.services import inspections

    app, op = app_and_operator()
    rows = inspections.list_notices(app, op, None if all_ else "open", account)
    data = [{"id": n.id, "account_no": n.account_no, "meter_no": n.meter_no,
             "card_uid": n.card_uid, "reason": n.reason, "status": n.status,
             "raised_by": n.raised_by, "station": n.station, "raised_at": n.raised_at} for n in rows]
    emit(data, "\n".join(f"{d['id']:>4} {d['status']:<6} {d['account_no'] or '-':<8} "
                         f"{d['raised_at']:%Y-%m-%d %H:%M} {d['reason']}" for d in data)
         or "no inspection notices")


@inspection_group.command("close")
@click.argument("notice_id", type=int)
@click.argument("finding")
def inspection_close(notice_id, finding):
    """Close notice NOTICE_ID with the inspector's FINDING."""
    from dbmis_core.services import inspections

    app, op = app_and_operator()
    inspections.close_notice(app, op, notice_id, finding)
    emit({"id": notice_id, "status": "closed"}, f"notice {notice_id} closed")


# -- sale check ------------------------------------------------------------------------------------
@click.group("sale")
def sale_group():
    """Checks before a sale."""


@sale_group.command("check")
@click.argument("account_no")
@click.argument("amount")
def sale_check(account_no, amount):
    """Read the card and show what selling AMOUNT would meet (warnings, refusal, debt), selling
    nothing. Exit status 1 when the sale would be refused."""
    from dbmis_core.services import vending

    app, op = app_and_operator()
    c = vending.check_sale(app, op, account_no, amount)
    data = {"account_no": c.account_no, "card_uid": c.card_uid, "amount": c.amount,
            "warnings": list(c.warnings), "refusal": c.refusal, "inspection": c.inspection,
            "debt_recovered": c.debt_recovered, "energy": c.energy, "credit": c.credit}
    lines = [f"warning: {w}" for w in c.warnings]
    if c.refusal:
        lines.append(f"REFUSED: {c.refusal}" + (" (inspection notice raised)" if c.inspection
                                                else ""))
    else:
        lines.append(f"{c.amount} -> {c.credit} credit" + (f", of which {c.debt_recovered} repays "
                                                           "debts" if c.debt_recovered else ""))
    emit(data, "\n".join(lines))
    if c.refusal:
        raise SystemExit(1)
