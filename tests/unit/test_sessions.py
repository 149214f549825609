"""Signing in, on moto's DynamoDB with an in-memory WeChat."""
import pytest

from chalicelib.domain.customers import CustomerAlreadyCreated
from chalicelib.errors import InvalidLoginCode, InvalidToken, LoginCodeUsed, TokenExpired
from chalicelib.services import sessions
from tests.helpers import FakeMiniProgram

KEY = "k" * 48
NOW = 1_800_000_000.0


@pytest.fixture
def customers(dynamodb):
    from chalicelib.db.customers import CustomerRepository

    return CustomerRepository()


def sign_in(code, customers, wechat, now=NOW):
    return sessions.start_session(code, wechat=wechat, customers=customers, now=now, signing_key=KEY)


def test_first_login_creates_the_customer_and_the_second_finds_it(customers):
    wechat = FakeMiniProgram()
    first = sign_in("sandbox-alice", customers, wechat)
    second = sign_in("sandbox-alice", customers, wechat, now=NOW + 60)
    assert first.new_customer is True and second.new_customer is False
    assert first.customer_id == second.customer_id
    customer = customers.get(first.customer_id)
    assert (customer.openid, customer.unionid) == ("o_alice", "u_alice")
    assert customer.first_seen_at == NOW and customer.last_seen_at == NOW + 60


def test_the_session_answer_carries_a_token_for_that_customer(customers):
    started = sign_in("sandbox-alice", customers, FakeMiniProgram())
    assert started.expires_in == 7 * 86400
    me = sessions.current_customer(f"Bearer {started.token}", customers=customers, now=NOW + 1, signing_key=KEY)
    assert me.customer_id == started.customer_id


def test_a_one_time_code_works_once(customers):
    wechat = FakeMiniProgram()
    assert sign_in("sandbox-once-bob", customers, wechat).new_customer
    with pytest.raises(LoginCodeUsed):
        sign_in("sandbox-once-bob", customers, wechat)


def test_an_unknown_code_creates_nobody(customers):
    with pytest.raises(InvalidLoginCode):
        sign_in("garbage", customers, FakeMiniProgram())


def test_the_token_expires_after_seven_days_and_a_new_login_is_the_same_customer(customers):
    wechat = FakeMiniProgram()
    started = sign_in("sandbox-alice", customers, wechat)
    later = NOW + 8 * 86400
    with pytest.raises(TokenExpired):
        sessions.current_customer(f"Bearer {started.token}", customers=customers, now=later, signing_key=KEY)
    again = sign_in("sandbox-alice", customers, wechat, now=later)
    assert again.customer_id == started.customer_id and again.new_customer is False


def test_a_customer_seen_by_openid_alone_is_the_same_person_once_the_unionid_comes(customers):
    wechat = FakeMiniProgram()
    before = sign_in("openid-only-carol", customers, wechat)
    after = sign_in("sandbox-carol", customers, wechat, now=NOW + 5)
    assert after.customer_id == before.customer_id
    assert customers.get(before.customer_id).unionid == "u_carol"
    from chalicelib.domain.customers import WeChatIdentity

    assert customers.find_by_identity(WeChatIdentity("o_other", "u_carol")) == before.customer_id


def test_two_first_logins_racing_yield_one_customer(customers):
    """The loser's transaction fails its condition and it adopts the winner's customer."""
    wechat = FakeMiniProgram()
    winner = sign_in("sandbox-dave", customers, wechat)

    class LateRepository:
        """Sees nobody at first (the winner had not committed yet), then the winner."""
        def __init__(self):
            self.lookups = 0

        def find_by_identity(self, identity):
            self.lookups += 1
            return None if self.lookups == 1 else customers.find_by_identity(identity)

        def add_first_seen(self, customer):
            customers.add_first_seen(customer)

        def record_login(self, *args):
            return customers.record_login(*args)

        def attach_identity(self, *args):
            return customers.attach_identity(*args)

    loser = sign_in("sandbox-dave", LateRepository(), wechat, now=NOW + 1)
    assert loser.customer_id == winner.customer_id and loser.new_customer is False


def test_a_repeated_first_seen_write_is_refused_by_its_condition(customers):
    from chalicelib.domain.customers import Customer

    customer = Customer("cu_x", "o_x", "u_x", NOW, NOW)
    customers.add_first_seen(customer)
    with pytest.raises(CustomerAlreadyCreated):
        customers.add_first_seen(Customer("cu_y", "o_x", "u_x", NOW, NOW))
    assert customers.get("cu_y") is None


def test_a_token_for_a_vanished_customer_is_invalid(customers):
    from chalicelib import auth

    token = auth.issue_customer_token("cu_nobody", NOW, KEY)
    with pytest.raises(InvalidToken):
        sessions.current_customer(f"Bearer {token}", customers=customers, now=NOW, signing_key=KEY)
