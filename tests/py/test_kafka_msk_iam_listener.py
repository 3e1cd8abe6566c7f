# tests/py/test_kafka_msk_iam_listener.py: the local Kafka's SASL_SSL listener is an honest
# stand-in for Amazon MSK's IAM listener, shown without the worker: a real Kafka client
# (confluent-kafka's librdkafka) with tokens made by AWS's own signer produces and consumes
# through it, over TLS verified against the stack's CA, and every token that is wrong in one
# respect (secret, expiry, action, host, region, key, session token, altered URL, a SASL
# extension beside it) or is not an MSK token at all is refused: the client gets an
# authentication error and the broker log says why, without any secret. Runs against the
# stack (scripts/stack up kafka).
import base64
import datetime
import re
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from msk_iam import utc_now

DEADLINE_S = 30


def wait_for(predicate, what, deadline_s=DEADLINE_S):
    end = time.time() + deadline_s
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail("not within %d s: %s" % (deadline_s, what))


def assert_no_secret(log, key):
    assert key.secret not in log
    if key.session_token:
        assert key.session_token not in log


@pytest.mark.parametrize("which", ["user_key", "role_key"])
def test_produce_and_consume_through_the_iam_listener(msk_iam, which):
    key = getattr(msk_iam, which)
    mark = msk_iam.log_mark()
    conf = msk_iam.config(lambda: msk_iam.token(key))
    topic = "msk-iam-" + uuid.uuid4().hex[:12]
    admin = AdminClient(dict(conf))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(DEADLINE_S)
    try:
        sent = [("m%d-%s" % (i, uuid.uuid4().hex)).encode() for i in range(5)]
        producer = Producer(dict(conf))
        for v in sent:
            producer.produce(topic, v)
        assert producer.flush(DEADLINE_S) == 0
        consumer = Consumer(dict(conf, **{"group.id": topic, "auto.offset.reset": "earliest"}))
        consumer.subscribe([topic])
        got = []

        def read():
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
            return len(got) >= len(sent)
        wait_for(read, "the 5 records consumed back")
        consumer.close()
        assert got == sent
    finally:
        admin.delete_topics([topic])[topic].result(DEADLINE_S)
    log = msk_iam.log_since(mark)
    assert "MSK IAM: authenticated principal %s" % key.principal in log
    assert "MSK IAM: refused" not in log
    assert_no_secret(log, key)


def refused(msk_iam, conf, reason):
    """A client with conf gets an authentication error and the broker logs the reason (a regular
    expression); returns the broker's log since."""
    mark = msk_iam.log_mark()
    errors = []
    producer = Producer(dict(conf, error_cb=errors.append))
    wait_for(lambda: producer.poll(0.2) is not None and
             any(e.code() == KafkaError._AUTHENTICATION for e in errors),
             "an authentication error at the client (errors: %s)" % errors)
    wait_for(lambda: re.search("MSK IAM: refused: " + reason, msk_iam.log_since(mark)),
             "the broker's log line 'MSK IAM: refused: %s'" % reason)
    return msk_iam.log_since(mark)


def tampered(token):
    """A valid token whose URL is changed after signing (a longer life asked for)."""
    url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    assert "X-Amz-Expires=900" in url
    url = url.replace("X-Amz-Expires=900", "X-Amz-Expires=899")
    return base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def other_region(region):
    return "us-east-1" if region != "us-east-1" else "eu-west-1"


# (id, token function of the listener, reason the broker must log: a regular expression in
# which {region}, {other_region}, {user} and {role} stand for the listener's region, another
# one and the access key ids of its user and role keys)
BAD_TOKENS = [
    ("wrong_secret", lambda l: l.token(l.user_key.but(secret="wrong" + l.user_key.secret)),
     "signature of {user} does not match"),
    ("expired", lambda l: l.token(l.user_key, at=utc_now() - datetime.timedelta(minutes=30)),
     r"token of {user} expired \d+ s ago"),
    ("signed_in_the_future", lambda l: l.token(l.user_key, at=utc_now() + datetime.timedelta(minutes=30)),
     r"token of {user} signed \d+ s in the future"),
    ("another_action", lambda l: l.token(l.user_key, action="kafka-cluster:AlterCluster"),
     "Action is kafka-cluster:AlterCluster, expected kafka-cluster:Connect"),
    ("another_action_forging_a_log_line",
     lambda l: l.token(l.user_key, action="kafka-cluster:Connect\nMSK IAM: forged line"),
     r"Action is kafka-cluster:Connect\?MSK IAM: forged line, expected kafka-cluster:Connect"),
    ("another_host", lambda l: l.token(l.user_key, endpoint="https://sts.{}.amazonaws.com/"),
     r"token is not a presigned URL for https://kafka\.{region}\.amazonaws\.com/"),
    ("another_region", lambda l: l.token(l.user_key, region=other_region(l.region),
                                         endpoint="https://kafka.%s.amazonaws.com/" % l.region),
     "credential scope region {other_region}, expected {region}"),
    ("unknown_key", lambda l: l.token(l.user_key.but(access_key_id="AKIACGWUNKNOWNKEY999")),
     "unknown access key id AKIACGWUNKNOWNKEY999"),
    ("role_without_session_token", lambda l: l.token(l.role_key.but(session_token=None)),
     "access key id {role} requires a session token"),
    ("role_with_another_session_token", lambda l: l.token(l.role_key.but(session_token="IQoJother")),
     "session token of {role} does not match"),
    ("user_with_a_session_token", lambda l: l.token(l.user_key.but(session_token="IQoJextra")),
     "access key id {user} has no session token but the token carries one"),
    ("altered_after_signing", lambda l: tampered(l.token(l.user_key)),
     "signature of {user} does not match"),
    ("garbage", lambda l: "bm90IGEgdG9rZW4gYXQgYWxs", "token is not a presigned URL"),
    ("not_base64url", lambda l: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJjZ3cifQ.", "token is not base64url"),
]


@pytest.mark.parametrize("make, reason", [(m, r) for _, m, r in BAD_TOKENS], ids=[i for i, _, _ in BAD_TOKENS])
def test_bad_token_is_refused_with_its_reason(msk_iam, make, reason):
    token = make(msk_iam)
    reason = reason.format(region=re.escape(msk_iam.region), other_region=re.escape(other_region(msk_iam.region)),
                           user=msk_iam.user_key.access_key_id, role=msk_iam.role_key.access_key_id)
    log = refused(msk_iam, msk_iam.config(lambda: token), reason)
    assert "MSK IAM: authenticated" not in log
    assert "\nMSK IAM: forged" not in log
    assert_no_secret(log, msk_iam.user_key)
    assert_no_secret(log, msk_iam.role_key)


def test_librdkafkas_default_unsecured_jwt_is_refused(msk_iam):
    # What the worker sent before it made MSK IAM tokens: librdkafka's own unsecured JWT.
    conf = msk_iam.config(lambda: None)
    del conf["oauth_cb"]
    conf.update({"enable.sasl.oauthbearer.unsecure.jwt": True, "sasl.oauthbearer.config": "principal=cgw"})
    refused(msk_iam, conf, "token is not base64url")


def test_tls_is_verified_against_the_stacks_ca(msk_iam):
    # Trusting only the system's CAs, the client refuses the broker's certificate: the listener
    # is real TLS, and the CA file is what makes it trusted.
    errors = []
    conf = msk_iam.config(lambda: msk_iam.token(msk_iam.user_key), error_cb=errors.append)
    conf["ssl.ca.location"] = "/etc/ssl/certs/ca-certificates.crt"
    producer = Producer(conf)
    wait_for(lambda: producer.poll(0.2) is not None and
             any(e.code() == KafkaError._SSL and "certificate verify failed" in e.str() for e in errors),
             "a certificate verification error (errors: %s)" % errors)


def test_sasl_extensions_are_refused(msk_iam):
    # MSK IAM tokens travel alone; a validly signed token with a SASL extension is refused.
    conf = msk_iam.config(lambda: None)
    key = msk_iam.user_key
    conf["oauth_cb"] = lambda _cfg: (msk_iam.token(key), time.time() + 900, key.access_key_id,
                                     {"logicalCluster": "lkc-1"})
    refused(msk_iam, conf, r"SASL extension logicalCluster \(MSK IAM tokens carry none\)")
