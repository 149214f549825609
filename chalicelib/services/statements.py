"""Dealer statements (domain rule 6): per dealer and Beijing month, the receivables both
ways order by order, the opening and closing balances, and the settlements the brand
recorded. The arithmetic is ``chalicelib.domain.statements``.

Who sees what: the brand every statement of its dealers; a dealer only its own (another
dealer's is 404, like anything out of reach); a store none (403). Only the brand records
settlements (a dealer 403).

Reading a statement costs one Query on the ledger's sparse index ``receivables_by_dealer``
for the month, one for everything before it (the opening balance: the dealer's whole
receivable history, acceptable while dealers have months rather than years of it; a
stored closing balance per month would bound it later) and one for the dealer's
settlements.
"""
from __future__ import annotations

from chalicelib.domain import statements as rules
from chalicelib.domain import tenancy
from chalicelib.domain.tenancy import BRAND, DEALER
from chalicelib.errors import NotFound, ValidationFailed
from chalicelib.log import get_logger


def _dealer_in_reach(principal, dealer_id: str, network, missing: NotFound):
    dealer = network.get_dealer(dealer_id)
    if dealer is None or not tenancy.can_see_dealer(principal, dealer):
        raise missing
    return dealer


def read_statement(principal, dealer_id: str | None, month: str | None, *, statements, network,
                   now: float) -> rules.Statement:
    """``?dealer_id=&month=``: a dealer token may leave out its own id; the month defaults
    to the current Beijing month."""
    tenancy.require_role(principal, BRAND, DEALER, action="read statements")
    if dealer_id is None:
        if principal.role != DEALER:
            raise ValidationFailed("'dealer_id' is required: whose statement?", field="dealer_id")
        dealer_id = principal.tenant_id
    month = rules.check_not_future(month, now) if month is not None else rules.month_of(now)
    dealer = _dealer_in_reach(principal, dealer_id, network, NotFound(f"No dealer {dealer_id}.", dealer_id=dealer_id))
    return _statement(dealer, month, statements)


def statement_by_id(principal, statement_id: str, *, statements, network, now: float) -> rules.Statement:
    tenancy.require_role(principal, BRAND, DEALER, action="read statements")
    dealer_id, month = rules.parse_statement_id(statement_id)
    missing = NotFound(f"No statement {statement_id}.", statement_id=statement_id)
    if month > rules.month_of(now):
        raise missing
    dealer = _dealer_in_reach(principal, dealer_id, network, missing)
    return _statement(dealer, month, statements)


def _statement(dealer, month: str, statements) -> rules.Statement:
    start, end = rules.month_bounds(month)
    movements = [*statements.receivables(dealer.dealer_id, before=start),
                 *statements.receivables(dealer.dealer_id, before=end, since=start)]
    return rules.build_statement(dealer.dealer_id, month, movements, statements.settlements(dealer.dealer_id),
                                 dealer_name=dealer.name)


def export_statement(principal, statement_id: str, *, statements, network, now: float) -> tuple[str, str]:
    """(file name, CSV) of one statement."""
    statement = statement_by_id(principal, statement_id, statements=statements, network=network, now=now)
    return f"statement-{statement.dealer_id}-{statement.month}.csv", rules.to_csv(statement)


def record_settlement(principal, statement_id: str, body: dict, *, statements, network,
                      now: float) -> tuple[rules.Settlement, bool]:
    """(the settlement, True when new). Idempotent per bank reference and dealer: the same
    reference with the same figures answers the stored settlement and records nothing;
    with other figures (or against another month) it is SETTLEMENT_REFERENCE_REUSED (409)."""
    tenancy.require_role(principal, BRAND, action="record settlements (only the brand may)")
    dealer_id, month = rules.parse_statement_id(statement_id)
    missing = NotFound(f"No statement {statement_id}.", statement_id=statement_id)
    if month > rules.month_of(now):
        raise missing
    _dealer_in_reach(principal, dealer_id, network, missing)
    fields = rules.check_settlement_body(body)
    settlement = rules.Settlement(dealer_id=dealer_id, month=month, recorded_at=now,
                                  recorded_by=f"{principal.role}:{principal.tenant_id}", **fields)
    stored = statements.add_settlement(settlement)
    if stored is None:
        get_logger("storelink.statements").info("settlement recorded", extra={"fields": {
            "statement_id": statement_id, "reference": settlement.reference, "amount_fen": settlement.amount_fen,
            "direction": settlement.direction}})
        return settlement, True
    if not stored.same_request(settlement):
        raise rules.SettlementReferenceReused(
            f"Reference {settlement.reference} is recorded for dealer {dealer_id} already, with other figures.",
            reference=settlement.reference, statement_id=stored.statement_id)
    return stored, False
