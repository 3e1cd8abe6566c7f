# tests/py/test_fakes.py: tools/fakes.py honours the contract (section 3 enrichment services,
# section 4 Flipper API, Buf CSR registry) and its test hooks (switches, stats, flags), and
# tools/catalogue.py has the promised shape. One fakes process per module (see conftest.py);
# tests that change switches put them back.
import base64
import http.client
import json
import os
import time

import catalogue
import pytest
from conftest import Fakes

AUTH = {"Authorization": "Basic " + base64.b64encode(b"cgw-bot:cgw-local-token").decode()}
TOKEN = {"Flipper-Cloud-Token": "s3cret"}


# ---- catalogue ----

def test_catalogue_shares_and_shape():
    fidos = [catalogue.fido(n) for n in range(1, 10001)]
    known = [catalogue.product(f) for f in fidos]
    assert sum(p is None for p in known) == 1000  # number % 10 == 7
    assert catalogue.product("F000017") is None and catalogue.product("F000001") is not None
    assert catalogue.product("X1") is None and catalogue.product("") is None
    paths = {" > ".join(p["categories"]) for p in known if p and p["categories"]}
    assert len(paths) < 100  # few categories, shared by many products
    assert {len(p["categories"]) for p in known if p} == {0, 1, 2, 3}
    assert catalogue.category_paths(["A", "B", "C"]) == ["A", "A > B", "A > B > C"]
    rs = [catalogue.retailer(catalogue.retailer_id(n)) for n in range(1, 1001)]
    assert sum(r is None for r in rs) == 100
    assert set(rs[0]) == {"retailer_id", "name", "store_type"}


# ---- FIDO Product Service ----

def test_batch_get_known_and_unknown(fakes):
    st, hdrs, body = fakes.request("fido", "/v1/products:batchGet",
                                   {"fidos": ["F000001", "F000007", "F000002", "nope", "F000001"]})
    assert st == 200 and hdrs["Content-Type"].startswith("application/json")
    assert [p["fido"] for p in body["products"]] == ["F000001", "F000002"]
    for p in body["products"]:
        assert p == catalogue.product(p["fido"])
        assert set(p) == {"fido", "name", "brand", "categories"}


def test_batch_get_limit(fakes):
    ok = [catalogue.fido(n) for n in range(1, 101)]
    st, _, body = fakes.request("fido", "/v1/products:batchGet", {"fidos": ok})
    assert st == 200 and len(body["products"]) == 90
    st, _, _ = fakes.request("fido", "/v1/products:batchGet", {"fidos": ok + ["F000101"]})
    assert st == 400
    assert fakes.request("fido", "/v1/products:batchGet", {"fidos": []})[2] == {"products": []}
    assert fakes.request("fido", "/v1/products:batchGet", b"not json")[0] == 400
    assert fakes.request("fido", "/v1/products:batchGet", {"fido": ["F000001"]})[0] == 400


def test_get_product(fakes):
    st, _, body = fakes.request("fido", "/v1/products/F000123")
    assert st == 200 and body == catalogue.product("F000123")
    assert fakes.request("fido", "/v1/products/F000127")[0] == 404
    assert fakes.request("fido", "/v1/products/garbage")[0] == 404


def test_retailer(fakes):
    st, _, body = fakes.request("retailer", "/v1/retailers/R0001")
    assert st == 200 and body == catalogue.retailer("R0001")
    assert set(body) == {"retailer_id", "name", "store_type"}
    assert fakes.request("retailer", "/v1/retailers/R0013")[0] == 404
    assert fakes.request("retailer", "/v1/retailers/")[0] == 404


def test_utf8_and_keepalive(fakes):
    # several requests on one HTTP/1.1 connection, and non-ASCII JSON arrives as UTF-8
    fido = next(catalogue.fido(n) for n in range(1, 5000)
                if catalogue.product(catalogue.fido(n)) and "è" in " ".join(
                    catalogue.product(catalogue.fido(n))["categories"]))
    c = http.client.HTTPConnection("127.0.0.1", fakes.ports["fido"], timeout=5)
    for _ in range(3):
        c.request("GET", "/v1/products/" + fido)
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read().decode("utf-8")) == catalogue.product(fido)
    c.close()


# ---- switches and stats ----

def test_stats_count_per_endpoint_and_status(fakes):
    fakes.control("retailer", reset_stats=True)
    for rid in ["R0001", "R0002", "R0003"]:
        fakes.request("retailer", "/v1/retailers/" + rid)
    s = fakes.stats("retailer")
    assert s["requests"] == 3
    assert s["endpoints"] == {"GET /v1/retailers/{retailer_id}": {"200": 2, "404": 1}}
    fakes.control("fido", reset_stats=True)
    fakes.request("fido", "/v1/products:batchGet", {"fidos": ["F000001", "F000002"]})
    fakes.request("fido", "/v1/products:batchGet", {"fidos": ["F000003"]})
    s = fakes.stats("fido")
    assert s["endpoints"]["POST /v1/products:batchGet"] == {"200": 2}
    assert (s["batch_fidos"], s["batch_max"]) == (3, 2)


def test_latency(fakes):
    fakes.control("retailer", latency_ms=300)
    try:
        t = time.monotonic()
        assert fakes.request("retailer", "/v1/retailers/R0001")[0] == 200
        assert time.monotonic() - t >= 0.3
    finally:
        fakes.control("retailer", latency_ms=0)


def test_error_rate(fakes):
    fakes.control("fido", error_rate=1.0, reset_stats=True)
    try:
        assert fakes.request("fido", "/v1/products/F000001")[0] == 500
        fakes.control("fido", error_status=502)
        assert fakes.request("fido", "/v1/products/F000001")[0] == 502
        fakes.control("fido", error_rate=0.5, error_status=500)
        codes = [fakes.request("fido", "/v1/products/F000001")[0] for _ in range(60)]
        assert 10 < codes.count(500) < 50 and codes.count(200) + codes.count(500) == 60
    finally:
        fakes.control("fido", error_rate=0.0, error_status=500)
    assert fakes.request("fido", "/v1/products/F000001")[0] == 200
    assert fakes.request("fido", "/_control", {"bogus": 1})[0] == 400


def test_outage_503_and_refuse(fakes):
    fakes.control("retailer", outage=True, reset_stats=True)
    try:
        assert fakes.request("retailer", "/v1/retailers/R0001")[0] == 503
        fakes.control("retailer", outage="refuse")
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            fakes.request("retailer", "/v1/retailers/R0001")
        assert fakes.request("retailer", "/_control")[2]["outage"] == "refuse"  # hooks still work
    finally:
        fakes.control("retailer", outage=False)
    assert fakes.request("retailer", "/v1/retailers/R0001")[0] == 200
    ep = fakes.stats("retailer")["endpoints"]["GET /v1/retailers/{retailer_id}"]
    assert ep == {"503": 1, "refused": 1, "200": 1}


def test_switches_are_per_port(fakes):
    fakes.control("fido", outage=True)
    try:
        assert fakes.request("retailer", "/v1/retailers/R0001")[0] == 200
    finally:
        fakes.control("fido", outage=False)


# ---- Flipper API ----

FLAGS = {"version": 1, "features": {
    "consumer_graph_ingestion": {"boolean": None, "actors": ["User;1"], "percentage_of_actors": "12.5",
                                 "percentage_of_time": None, "groups": [], "expression": None},
    "consumer_graph_receipt_killswitch": {"boolean": "true"},
    "consumer_graph_factoid_killswitch": {"boolean": None, "percentage_of_actors": "0"}}}


def gates(feature):
    return {g["key"]: g["value"] for g in feature["gates"]}


def test_flipper_features_shape(fakes):
    st, _, body = fakes.request("flipper", "/_control/flags", FLAGS)
    assert st == 200 and set(body["features"]) == set(FLAGS["features"])
    st, hdrs, body = fakes.request("flipper", "/features", headers=TOKEN)
    assert st == 200
    feats = {f["key"]: f for f in body["features"]}
    assert {k: f["state"] for k, f in feats.items()} == {
        "consumer_graph_ingestion": "conditional", "consumer_graph_receipt_killswitch": "on",
        "consumer_graph_factoid_killswitch": "off"}
    g = feats["consumer_graph_ingestion"]["gates"]
    assert [x["key"] for x in g] == ["boolean", "expression", "actors", "percentage_of_actors",
                                     "percentage_of_time", "groups"]
    assert [x["name"] for x in g] == ["boolean", "expression", "actor", "percentage_of_actors",
                                      "percentage_of_time", "group"]
    assert gates(feats["consumer_graph_ingestion"]) == {
        "boolean": None, "expression": None, "actors": ["User;1"], "percentage_of_actors": "12.5",
        "percentage_of_time": None, "groups": []}
    assert gates(feats["consumer_graph_receipt_killswitch"])["boolean"] == "true"
    assert gates(feats["consumer_graph_factoid_killswitch"])["percentage_of_actors"] == "0"
    assert int(hdrs["poll-interval"]) >= 1


def test_flipper_query_options_and_typed_values(fakes):
    fakes.request("flipper", "/_control/flags", FLAGS)
    body = fakes.request("flipper", "/features?keys=consumer_graph_ingestion&exclude_gate_names=true",
                         headers=TOKEN)[2]
    assert [f["key"] for f in body["features"]] == ["consumer_graph_ingestion"]
    assert all("name" not in g for g in body["features"][0]["gates"])
    st, _, one = fakes.request("flipper", "/features/consumer_graph_receipt_killswitch", headers=TOKEN)
    assert st == 200 and one["state"] == "on"
    st, _, err = fakes.request("flipper", "/features/nope", headers=TOKEN)
    assert st == 404 and err["code"] == 1
    fakes.control("flipper", value_style="typed")
    try:
        feats = {f["key"]: f for f in fakes.request("flipper", "/features", headers=TOKEN)[2]["features"]}
        assert gates(feats["consumer_graph_ingestion"])["percentage_of_actors"] == 12.5
        assert gates(feats["consumer_graph_ingestion"])["boolean"] is False
        assert gates(feats["consumer_graph_receipt_killswitch"])["boolean"] is True
        assert gates(feats["consumer_graph_factoid_killswitch"])["percentage_of_actors"] == 0
    finally:
        fakes.control("flipper", value_style="strings")


def test_flipper_token(fakes):
    assert fakes.request("flipper", "/features")[0] == 401
    assert fakes.request("flipper", "/features", headers={"Flipper-Cloud-Token": "wrong"})[0] == 401


def test_flipper_etag_304(fakes):
    fakes.request("flipper", "/_control/flags", FLAGS)
    st, hdrs, _ = fakes.request("flipper", "/features", headers=TOKEN)
    etag = hdrs["ETag"]
    assert st == 200 and etag.startswith('"')
    c = http.client.HTTPConnection("127.0.0.1", fakes.ports["flipper"], timeout=5)
    c.request("GET", "/features", headers=dict(TOKEN, **{"If-None-Match": etag}))
    r = c.getresponse()
    assert r.status == 304 and r.read() == b"" and r.headers["ETag"] == etag
    # the connection stays usable after a body-less 304
    c.request("GET", "/features", headers=TOKEN)
    r = c.getresponse()
    assert r.status == 200 and json.loads(r.read())["features"]
    c.close()
    changed = json.loads(json.dumps(FLAGS))
    changed["features"]["consumer_graph_receipt_killswitch"]["boolean"] = None
    fakes.request("flipper", "/_control/flags", changed)
    st, hdrs2, body = fakes.request("flipper", "/features", headers=dict(TOKEN, **{"If-None-Match": etag}))
    assert st == 200 and hdrs2["ETag"] != etag
    assert {f["key"]: f["state"] for f in body["features"]}["consumer_graph_receipt_killswitch"] == "off"
    fakes.control("flipper", etag_style="weak")
    try:
        st, hdrs3, _ = fakes.request("flipper", "/features", headers=TOKEN)
        assert hdrs3["ETag"].startswith('W/"')
        assert fakes.request("flipper", "/features",
                             headers=dict(TOKEN, **{"If-None-Match": hdrs3["ETag"]}))[0] == 304
    finally:
        fakes.control("flipper", etag_style="strong")


def test_flipper_flags_roundtrip(fakes):
    fakes.request("flipper", "/_control/flags", FLAGS)
    exp = fakes.request("flipper", "/_control/flags")[2]
    assert exp["version"] == 1
    assert exp["features"]["consumer_graph_ingestion"]["percentage_of_actors"] == "12.5"
    assert exp["features"]["consumer_graph_receipt_killswitch"]["boolean"] == "true"
    assert fakes.request("flipper", "/_control/flags", {"features": 3})[0] == 400


# ---- schema registry ----

def test_registry(fakes):
    proto = open(os.path.join(os.path.dirname(catalogue.__file__), "..", "proto", "factoids", "v1",
                              "factoid.proto"), encoding="utf-8").read()
    for path in ["/schemas/ids/1", "/integrations/confluent/instance/schemas/ids/1"]:
        st, hdrs, body = fakes.request("registry", path, headers=AUTH)
        assert st == 200 and body == {"schemaType": "PROTOBUF", "schema": proto}
        assert hdrs["Content-Type"] == "application/vnd.schemaregistry.v1+json"
    st, _, body = fakes.request("registry", "/schemas/ids/2", headers=AUTH)
    assert st == 200 and body["schema"] != proto and "int64 factoid_id = 1" in body["schema"]
    st, _, body = fakes.request("registry", "/schemas/ids/3", headers=AUTH)
    assert st == 404 and body == {"error_code": 40403, "message": "Schema not found"}
    assert fakes.request("registry", "/schemas/ids/1")[0] == 401
    bad = {"Authorization": "Basic " + base64.b64encode(b"cgw-bot:wrong").decode()}
    assert fakes.request("registry", "/schemas/ids/1", headers=bad)[0] == 401


# ---- process: start flags, log, pidfile, SIGTERM ----

def test_start_flags_log_and_sigterm(tmp_path):
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps(FLAGS))
    f = Fakes(str(tmp_path), ["--switch", 'fido:{"outage":true}', "--flags", str(flags),
                              "--registry-user", "u", "--registry-token", "t",
                              "--registry-id", "7", "--registry-incompatible-id", "0"])
    try:
        assert f.request("fido", "/v1/products/F000001")[0] == 503
        assert f.request("retailer", "/v1/retailers/R0001")[0] == 200
        feats = f.request("flipper", "/features")[2]["features"]  # no token configured
        assert len(feats) == 3
        ua = {"Authorization": "Basic " + base64.b64encode(b"u:t").decode()}
        assert f.request("registry", "/schemas/ids/7", headers=ua)[0] == 200
        assert f.request("registry", "/schemas/ids/2", headers=ua)[0] == 404
        assert int(open(f.pidfile).read()) == f.proc.pid
    finally:
        rc = f.stop()
    assert rc == 0 and not os.path.exists(f.pidfile)
    lines = open(f.log).read().splitlines()
    assert len(lines) == 5 and '"GET /v1/products/F000001" 503' in lines[0]


def test_port_in_use_fails(tmp_path, fakes):
    f = None
    with pytest.raises(RuntimeError, match="cannot listen"):
        f = Fakes(str(tmp_path), ["--services", "fido", f"--fido-port={fakes.ports['fido']}"])
    assert f is None


def test_no_nagle_stall_on_keepalive(fakes):
    # headers and body are separate writes; without TCP_NODELAY each answer waits ~40 ms
    body = json.dumps({"fidos": [catalogue.fido(n) for n in range(1, 101)]})
    c = http.client.HTTPConnection("127.0.0.1", fakes.ports["fido"], timeout=5)
    t = time.monotonic()
    for _ in range(40):
        c.request("POST", "/v1/products:batchGet", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        assert r.status == 200 and len(json.loads(r.read())["products"]) == 90
    c.close()
    assert time.monotonic() - t < 1.0


def test_expect_100_continue(fakes):
    # libcurl sends "Expect: 100-continue" with larger POST bodies and waits for the 100
    import socket
    body = json.dumps({"fidos": [catalogue.fido(n) for n in range(1, 101)]}).encode()
    s = socket.create_connection(("127.0.0.1", fakes.ports["fido"]), timeout=5)
    s.sendall(b"POST /v1/products:batchGet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(body))
    assert s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n")
    s.sendall(body)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    assert buf.startswith(b"HTTP/1.1 200 ")
    s.close()
