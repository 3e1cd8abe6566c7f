# tools/pb.py: a tiny protobuf (proto3) encoder/decoder for the two contract messages,
# receipts.v1.ProcessedReceiptEvent and factoids.v1.Factoid, plus the Confluent wire-format frame.
#
# Why hand-written instead of generated code: the generator must produce the *same bytes* for the
# same seed on every machine and must also produce deliberately broken records (truncated,
# invalid wire types). A 100-line encoder does both, needs no protoc/codegen step at run time and
# cannot drift with the `protobuf` package's version. It is checked against the real thing:
# tests/py/test_gen.py compiles the contract .proto files with protoc(-c) into a descriptor set
# and parses our bytes with the official `protobuf` runtime (and re-serializes them).
#
# Design: a schema is a dict {field_number: (name, kind, repeated)} where kind is a scalar type
# name or another schema dict (nested message). Messages are plain dicts keyed by field name.
# Encoding follows proto3: fields in field-number order, default scalars (0, "", False) omitted,
# a nested message is written whenever its key is present (even if empty: presence matters for
# digital_receipt_data), repeated messages are written one record each.
import struct

TIMESTAMP = {1: ("seconds", "int64", False), 2: ("nanos", "int32", False)}

# receipts.v1 (proto/receipts/v1/processed_receipt_event.proto)
RECEIPT_RETAILER = {1: ("retailer_id", "string", False), 2: ("store_id", "string", False),
                    3: ("name", "string", False), 4: ("postal_code", "string", False)}
RECEIPT_ITEM = {1: ("line_number", "int32", False), 2: ("description", "string", False),
                3: ("quantity", "double", False), 4: ("unit_price_cents", "int64", False),
                5: ("total_price_cents", "int64", False), 6: ("fido", "string", False),
                7: ("barcode", "string", False)}
DIGITAL_RECEIPT_DATA = {1: ("source", "string", False), 2: ("order_number", "string", False)}
PHYSICAL_RECEIPT_DATA = {1: ("image_count", "int32", False), 2: ("ocr_engine", "string", False)}
PROCESSED_RECEIPT_EVENT = {
    1: ("receipt_id", "string", False), 2: ("user_id", "string", False),
    3: ("status", "enum", False), 4: ("purchased_at", TIMESTAMP, False),
    5: ("processed_at", TIMESTAMP, False), 6: ("retailer", RECEIPT_RETAILER, False),
    7: ("total_cents", "int64", False), 8: ("currency", "string", False),
    9: ("items", RECEIPT_ITEM, True), 10: ("digital_receipt_data", DIGITAL_RECEIPT_DATA, False),
    11: ("physical_receipt_data", PHYSICAL_RECEIPT_DATA, False)}
RECEIPT_STATUS = {0: "RECEIPT_STATUS_UNSPECIFIED", 1: "RECEIPT_STATUS_PENDING",
                  2: "RECEIPT_STATUS_FINISHED", 3: "RECEIPT_STATUS_REJECTED",
                  4: "RECEIPT_STATUS_FLAGGED", 5: "RECEIPT_STATUS_DUPLICATE"}

# factoids.v1 (proto/factoids/v1/factoid.proto)
SHOP_ORDER_ITEM = {1: ("line_number", "int32", False), 2: ("fido", "string", False),
                   3: ("quantity", "int32", False), 4: ("unit_price_cents", "int64", False),
                   5: ("title", "string", False)}
SHOP_ORDER = {1: ("order_id", "string", False), 2: ("retailer_id", "string", False),
              3: ("total_cents", "int64", False), 4: ("currency", "string", False),
              5: ("fido_count", "int32", False), 6: ("items", SHOP_ORDER_ITEM, True)}
PLAY_ACTIVITY = {1: ("game_id", "string", False), 2: ("milestone_id", "string", False),
                 3: ("points", "int64", False)}
FACTOID = {1: ("factoid_id", "string", False), 2: ("user_id", "string", False),
           3: ("source", "enum", False), 4: ("type", "string", False),
           5: ("occurred_at", TIMESTAMP, False), 10: ("shop_order", SHOP_ORDER, False),
           11: ("play_activity", PLAY_ACTIVITY, False)}
FACTOID_SOURCE = {0: "FACTOID_SOURCE_UNSPECIFIED", 1: "FACTOID_SOURCE_SHOP",
                  2: "FACTOID_SOURCE_PLAY", 3: "FACTOID_SOURCE_RECEIPT", 4: "FACTOID_SOURCE_SOCIAL"}

_VARINT_KINDS = {"int32", "int64", "enum", "bool"}


_SMALL = [bytes((i,)) for i in range(128)]


def varint(v):
    """Unsigned LEB128; negative int32/int64 are written as 10-byte two's complement."""
    if 0 <= v < 128:
        return _SMALL[v]
    if v < 0:
        v += 1 << 64
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_PLANS = {}


def _plan(schema):
    """Fields in number order with their tag bytes, computed once per schema."""
    plan = _PLANS.get(id(schema))
    if plan is None:
        plan = []
        for num in sorted(schema):
            name, kind, repeated = schema[num]
            if isinstance(kind, dict):
                wt = 2
            elif kind == "string":
                wt = 2
            elif kind == "double":
                wt = 1
            elif kind in _VARINT_KINDS:
                wt = 0
            else:
                raise ValueError(f"unsupported kind {kind}")
            plan.append((name, kind, repeated, varint(num << 3 | wt)))
        _PLANS[id(schema)] = plan
    return plan


def encode(schema, msg):
    out = bytearray()
    for name, kind, repeated, tag in _plan(schema):
        v = msg.get(name)
        if v is None:
            continue
        for v in (v if repeated else (v,)):
            if isinstance(kind, dict):
                body = encode(kind, v)
                out += tag + varint(len(body)) + body
            elif kind == "string":
                if v == "" and not repeated:
                    continue
                b = v.encode("utf-8")
                out += tag + varint(len(b)) + b
            elif kind == "double":
                if v == 0.0 and not repeated:
                    continue
                out += tag + struct.pack("<d", v)
            else:
                if not v and not repeated:
                    continue
                out += tag + varint(int(v))
    return bytes(out)


class DecodeError(ValueError):
    pass


def _read_varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def decode(schema, buf):
    """Decode bytes into a dict (absent fields are absent keys). Unknown fields are skipped.
    Raises DecodeError on anything a real protobuf parser would reject."""
    msg, pos = {}, 0
    buf = bytes(buf)
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise DecodeError("field number 0")
        if wt == 0:
            v, pos = _read_varint(buf, pos)
        elif wt == 1:
            if pos + 8 > len(buf):
                raise DecodeError("truncated fixed64")
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise DecodeError("truncated length-delimited field")
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            if pos + 4 > len(buf):
                raise DecodeError("truncated fixed32")
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise DecodeError(f"invalid wire type {wt}")
        if num not in schema:
            continue
        name, kind, repeated = schema[num]
        if isinstance(kind, dict):
            if wt != 2:
                raise DecodeError(f"{name}: wrong wire type")
            val = decode(kind, v)
        elif kind == "string":
            if wt != 2:
                raise DecodeError(f"{name}: wrong wire type")
            try:
                val = v.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DecodeError(f"{name}: invalid UTF-8") from e
        elif kind == "double":
            if wt != 1:
                raise DecodeError(f"{name}: wrong wire type")
            val = struct.unpack("<d", v)[0]
        else:
            if wt != 0:
                raise DecodeError(f"{name}: wrong wire type")
            val = v
            if kind in ("int32", "int64", "enum") and val >= 1 << 63:
                val -= 1 << 64
            if kind in ("int32", "enum"):
                val = (val + (1 << 31)) % (1 << 32) - (1 << 31)
        if repeated:
            msg.setdefault(name, []).append(val)
        else:
            msg[name] = val
    return msg


# Confluent Schema Registry wire format: magic 0x00, schema id (int32 BE), message indexes
# (zigzag varints; the path [0] is the single byte 0x00), then the protobuf message.
def confluent_frame(payload, schema_id=1, indexes=(0,)):
    if list(indexes) == [0]:
        idx = b"\x00"
    else:
        zz = lambda v: (v << 1) ^ (v >> 63)  # noqa: E731
        idx = varint(zz(len(indexes))) + b"".join(varint(zz(i)) for i in indexes)
    return b"\x00" + struct.pack(">i", schema_id) + idx + payload


def confluent_unframe(buf):
    """Returns (schema_id, indexes, payload); raises DecodeError on bad framing."""
    if len(buf) < 6 or buf[0] != 0:
        raise DecodeError("bad magic byte or too short")
    schema_id = struct.unpack(">i", buf[1:5])[0]
    unzz = lambda u: (u >> 1) ^ -(u & 1)  # noqa: E731
    u, pos = _read_varint(buf, 5)
    count = unzz(u)
    if count == 0:
        return schema_id, [0], bytes(buf[pos:])
    if count < 0:
        raise DecodeError("negative message-index count")
    idx = []
    for _ in range(count):
        u, pos = _read_varint(buf, pos)
        idx.append(unzz(u))
    return schema_id, idx, bytes(buf[pos:])
