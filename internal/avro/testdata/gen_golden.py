#!/usr/bin/python3
"""Golden vectors for internal/avro, from Apache Avro's Python implementation.

Re-run after changing a case below (needs Debian's python3-avro, 1.11.1, which
loads under /usr/bin/python3, not under another python3 that may come first on
PATH):

    apt-get install -y python3-avro
    cd internal/avro && /usr/bin/python3 testdata/gen_golden.py

It writes, next to this script:

  golden_compat.json      reader/writer pairs with the verdict of
                          avro.compatibility.ReaderWriterCompatibilityChecker;
  golden_resolution.json  writer data (the writer's binary, from DatumWriter)
                          with the datum avro.io.DatumReader(writer, reader)
                          resolves it to, and that datum's binary in the
                          reader's schema;
  golden_canonical.json   Parsing Canonical Forms and CRC-64-AVRO fingerprints.

The Go tests read only these files: they never need Python.

Where python-avro 1.11.1 departs from the specification, a case carries an
"expect" override and a "note" that says why; the generator checks that
Python still behaves as the note says (so a fixed Python release is noticed)
and records what Python did under "python". Known departures:

  * resolution ignores reader field aliases;
  * resolution ignores the reader's enum default for unknown symbols;
  * resolution does not promote string <-> bytes ("Schemas do not match"),
    nor array items or map values,
    and returns promoted values in the writer's type (5, not 5.0, for an int
    read as float);
  * resolution matches named types in unions by full name, where the
    specification says unqualified name, ignores the reader's type aliases,
    and refuses a writer union with a non-union reader outright instead of
    resolving the branch that was written;
  * resolution returns the default of a field with a logical type as the
    underlying value (a long for a timestamp);
  * resolution reads a decimal with the writer's scale even when the reader's
    differs; the specification says mismatched logical types fall back to the
    underlying type (here: the bytes);
  * field defaults: bytes defaults are UTF-8-encoded instead of mapping code
    points 0-255 to bytes, and an integer default for a float or double field
    is rejected;
  * the compatibility checker reports a reader field that is missing from the
    writer, and whose type is an enum with a default, as TYPE_MISMATCH of the
    enum against the whole writer record (Java does the same); the
    specification needs a field default, so READER_FIELD_MISSING_DEFAULT_VALUE;
  * the compatibility checker compares reader aliases with the writer's full
    name, so an alias written relative to the namespace never matches;
  * the compatibility checker restarts locations at "/" below a writer union,
    adds a spurious "/" to its set of locations (see python_compat), and
    compares the full name of a type whose name was written with dots;
  * canonical forms keep {"type":"bytes"} for a primitive with a logicalType,
    where the specification's [PRIMITIVES] rule (and Java) give "bytes", and
    write a fixed in full each time it is used instead of by name after its
    definition (which is not even a valid schema: it defines the name twice);
  * DatumWriter writes a decimal's digits without rescaling them to the
    schema's scale (Decimal("1.5") at scale 2 is written as 0.15), so every
    decimal below is given with exactly the schema's scale.

One deliberate departure of ours from the specification's letter: a union
value goes to the reader's first branch of the same type before the first
branch it can be promoted to (Java's rule), so reading data with its own
schema never changes union branches. See "int into [long, int]".
"""

import datetime
import decimal
import io
import json
import math
import os
import re
import warnings

import avro.compatibility
import avro.io
import avro.schema

warnings.simplefilter("ignore")  # python-avro warns about logical types it ignores

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "..", "..", "..", "schemas")
UTC = datetime.timezone.utc
D = decimal.Decimal

# ---------------------------------------------------------------------------
# CRC-64-AVRO, transcribed from the specification ("Schema Fingerprints").

EMPTY = 0xC15D213AA4D7A795
FP_TABLE = []
for i in range(256):
    fp = i
    for _ in range(8):
        fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
    FP_TABLE.append(fp & 0xFFFFFFFFFFFFFFFF)


def fingerprint64(data):
    fp = EMPTY
    for b in data:
        fp = (fp >> 8) ^ FP_TABLE[(fp ^ b) & 0xFF]
    return fp


# Published in Avro's share/test/data/schema-tests.txt; checks the transcription.
for text, want in [('"null"', 7195948357588979594), ('"boolean"', -6970731678124411036),
                   ('"int"', 8247732601305521295), ('"long"', -3434872931120570953),
                   ('"float"', 5583340709985441680), ('"double"', -8181574048448539266),
                   ('"bytes"', 5746618253357095269), ('"string"', -8142146995180207161)]:
    got = fingerprint64(text.encode())
    assert got == want % (1 << 64), (text, got)

# ---------------------------------------------------------------------------
# Helpers


def parse(s):
    return avro.schema.parse(json.dumps(s))


PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}


def simple_primitives(v):
    """Apply [PRIMITIVES] to Python's canonical form: {"type":"bytes"} -> "bytes"."""
    if isinstance(v, dict):
        if set(v) == {"type"} and v["type"] in PRIMITIVES:
            return v["type"]
        return {k: simple_primitives(x) for k, x in v.items()}
    if isinstance(v, list):
        return [simple_primitives(x) for x in v]
    return v


def canonical(s):
    py = parse(s).canonical_form
    fixed = json.dumps(simple_primitives(json.loads(py)), separators=(",", ":"), ensure_ascii=False)
    return py, fixed


def tag(v):
    """A schema-free JSON form of a Python datum, which the Go tests build
    from native Go values the same way."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return {"$float": "NaN"}
        if math.isinf(v):
            return {"$float": "Infinity" if v > 0 else "-Infinity"}
        return v
    if isinstance(v, bytes):
        return {"$bytes": v.hex()}
    if isinstance(v, decimal.Decimal):
        return {"$decimal": format(v, "f")}
    if isinstance(v, datetime.datetime):
        delta = v - datetime.datetime(1970, 1, 1, tzinfo=UTC)
        return {"$instant_us": delta // datetime.timedelta(microseconds=1)}
    if isinstance(v, datetime.date):
        delta = v - datetime.date(1970, 1, 1)
        return {"$instant_us": delta.days * 86400 * 10**6}
    if isinstance(v, datetime.time):
        return {"$duration_us": ((v.hour * 60 + v.minute) * 60 + v.second) * 10**6 + v.microsecond}
    if isinstance(v, dict):
        return {k: tag(x) for k, x in v.items()}
    if isinstance(v, list):
        return [tag(x) for x in v]
    raise TypeError(type(v))


def encode(schema, datum):
    buf = io.BytesIO()
    avro.io.DatumWriter(parse(schema)).write(datum, avro.io.BinaryEncoder(buf))
    return buf.getvalue()


def python_resolve(writer, reader, wbin):
    try:
        datum = avro.io.DatumReader(parse(writer), parse(reader)).read(avro.io.BinaryDecoder(io.BytesIO(wbin)))
        return {"ok": True, "datum": datum}
    except Exception as e:  # python-avro raises several exception types
        message = re.sub(r" at 0x[0-9a-f]+", "", str(e).splitlines()[0])  # no addresses: keep the output stable
        return {"ok": False, "error": type(e).__name__ + ": " + message}


def python_compat(reader, writer):
    res = avro.compatibility.ReaderWriterCompatibilityChecker().get_compatibility(parse(reader), parse(writer))
    ok = res.compatibility is avro.compatibility.SchemaCompatibilityType.compatible
    types = sorted(t.name.upper() for t in res.incompatibilities)
    locations = set() if ok else set(res.locations)
    # merge() unions the locations of an incompatible result with those of a
    # compatible one, which default to {"/"}: a "/" beyond one location per
    # incompatibility is that artefact, not a place.
    if "/" in locations and len(locations) > len(types):
        locations.discard("/")
    return {"compatible": ok, "types": types, "locations": sorted(locations)}


# ---------------------------------------------------------------------------
# Schemas used by several cases


def rec(name, *fields, **extra):
    s = {"type": "record", "name": name, "fields": list(fields)}
    s.update(extra)
    return s


def fld(name, type_, **extra):
    f = {"name": name, "type": type_}
    f.update(extra)
    return f


def load(name):
    with open(os.path.join(SCHEMAS, name)) as f:
        return json.load(f)


ORDER_CREATED = load("OrderCreated.avsc")
ITEM_V1 = load("OrderItemAdded.avsc")
ITEM_V2 = load("OrderItemAdded.v2.avsc")
ORDER_SHIPPED = load("OrderShipped.avsc")

DEC = {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 2}
TS_MS = {"type": "long", "logicalType": "timestamp-millis"}
COLOR3 = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}
COLOR2 = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"]}
COLOR2_DEFAULT = {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN"], "default": "RED"}
MD5 = {"type": "fixed", "name": "MD5", "size": 16}
LIST = rec("LongList", fld("value", "long"), fld("next", ["null", "LongList"]))
LIST_V2 = rec("LongList", fld("value", "long"), fld("next", ["null", "LongList"]),
              fld("label", "string", default="none"))
ADDR = rec("Address", fld("street", "string"), fld("city", "string"))
ADDR_ZIP = rec("Address", fld("street", "string"), fld("city", "string"), fld("zip", "string"))
ADDR_ZIP_DEFAULT = rec("Address", fld("street", "string"), fld("city", "string"), fld("zip", "string", default=""))

# ---------------------------------------------------------------------------
# Compatibility pairs: (name, reader, writer[, override])

COMPAT = [
    ("int reads int", "int", "int"),
    ("long reads int", "long", "int"),
    ("float reads int", "float", "int"),
    ("double reads int", "double", "int"),
    ("float reads long", "float", "long"),
    ("double reads long", "double", "long"),
    ("double reads float", "double", "float"),
    ("bytes reads string", "bytes", "string"),
    ("string reads bytes", "string", "bytes"),
    ("null reads null", "null", "null"),
    ("boolean reads boolean", "boolean", "boolean"),
    ("int cannot read long", "int", "long"),
    ("long cannot read float", "long", "float"),
    ("float cannot read double", "float", "double"),
    ("boolean cannot read int", "boolean", "int"),
    ("null cannot read boolean", "null", "boolean"),
    ("string cannot read int", "string", "int"),
    ("int cannot read string", "int", "string"),
    ("bytes cannot read int", "bytes", "int"),
    ("OrderItemAdded v2 reads v1 through the currency default", ITEM_V2, ITEM_V1),
    ("OrderItemAdded v1 reads v2 by skipping currency", ITEM_V1, ITEM_V2),
    ("OrderCreated reads itself", ORDER_CREATED, ORDER_CREATED),
    ("OrderShipped cannot read OrderCreated", ORDER_SHIPPED, ORDER_CREATED),
    ("an added field without a default is missing", ADDR_ZIP, ADDR),
    ("an added field with a default is fine", ADDR_ZIP_DEFAULT, ADDR),
    ("a removed field is skipped", ADDR, ADDR_ZIP),
    ("reordered fields match by name",
     rec("R", fld("b", "string"), fld("a", "int")), rec("R", fld("a", "int"), fld("b", "string"))),
    ("a field promoted from int to long", rec("R", fld("a", "long")), rec("R", fld("a", "int"))),
    ("a field narrowed from long to int", rec("R", fld("a", "int")), rec("R", fld("a", "long"))),
    ("a field changed from string to int", rec("R", fld("a", "int")), rec("R", fld("a", "string"))),
    ("record names differ", rec("A", fld("a", "int")), rec("B", fld("a", "int"))),
    ("record names match without their namespaces",
     rec("R", fld("a", "int"), namespace="x"), rec("R", fld("a", "int"), namespace="y")),
    ("the reader's full alias matches the writer's name",
     rec("New", fld("a", "int"), namespace="n", aliases=["n.Old"]), rec("Old", fld("a", "int"), namespace="n")),
    ("the reader's relative alias matches the writer's name",
     rec("New", fld("a", "int"), namespace="n", aliases=["Old"]), rec("Old", fld("a", "int"), namespace="n"),
     {"compatible": True, "types": [], "locations": [],
      "note": "python compares the alias as written ('Old') with the writer's full name ('n.Old'); "
              "the specification qualifies a relative alias with the namespace, and we match unqualified names."}),
    ("a renamed field found through the reader's alias",
     rec("R", fld("b", "int", aliases=["a"])), rec("R", fld("a", "int"))),
    ("a renamed field without alias or default", rec("R", fld("b", "int")), rec("R", fld("a", "int"))),
    ("a nested record gains a required field",
     rec("Order", fld("id", "string"), fld("to", ADDR_ZIP)), rec("Order", fld("id", "string"), fld("to", ADDR))),
    ("two fields break two rules",
     rec("R", fld("a", "int"), fld("b", "string"), fld("c", "int")), rec("R", fld("a", "string"), fld("b", "string"))),
    ("a missing enum field with an enum default still needs a field default",
     rec("R", fld("a", "int"), fld("color", COLOR2_DEFAULT)), rec("R", fld("a", "int")),
     {"compatible": False, "types": ["READER_FIELD_MISSING_DEFAULT_VALUE"], "locations": ["/fields/1"],
      "note": "python (like Java) checks the enum against the whole writer record and reports TYPE_MISMATCH "
              "at /fields/1/type; an enum default only replaces unknown symbols, so the field needs a default."}),
    ("a recursive list reads itself", LIST, LIST),
    ("a recursive list gains a field with a default", LIST_V2, LIST),
    ("enums with the same symbols", COLOR3, COLOR3),
    ("the reader's enum has more symbols", COLOR3, COLOR2),
    ("the writer's enum has a symbol the reader lacks", COLOR2, COLOR3),
    ("the reader's enum default covers unknown symbols", COLOR2_DEFAULT, COLOR3),
    ("enum symbols in another order", {"type": "enum", "name": "Color", "symbols": ["BLUE", "RED", "GREEN"]}, COLOR3),
    ("enum names differ", {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}, COLOR3),
    ("fixed of the same name and size", MD5, MD5),
    ("fixed sizes differ", {"type": "fixed", "name": "MD5", "size": 8}, MD5),
    ("fixed names differ", {"type": "fixed", "name": "Hash", "size": 16}, MD5),
    ("fixed names and sizes differ", {"type": "fixed", "name": "Hash", "size": 8}, MD5),
    ("fixed names match across namespaces", {"type": "fixed", "name": "a.MD5", "size": 16}, {"type": "fixed", "name": "b.MD5", "size": 16},
     {"compatible": True, "types": [], "locations": [],
      "note": "for a name written with dots python's .name is the full name, so it compares a.MD5 with b.MD5; "
              "the specification matches unqualified names (MD5)"}),
    ("arrays of the same items", {"type": "array", "items": "int"}, {"type": "array", "items": "int"}),
    ("array items promoted", {"type": "array", "items": "long"}, {"type": "array", "items": "int"}),
    ("array items narrowed", {"type": "array", "items": "int"}, {"type": "array", "items": "long"}),
    ("map values promoted", {"type": "map", "values": "double"}, {"type": "map", "values": "float"}),
    ("map values changed", {"type": "map", "values": "int"}, {"type": "map", "values": "string"}),
    ("an array cannot read a map", {"type": "array", "items": "int"}, {"type": "map", "values": "int"}),
    ("array items are records missing a default",
     {"type": "array", "items": ADDR_ZIP}, {"type": "array", "items": ADDR}),
    ("nullable string reads nullable string", ["null", "string"], ["null", "string"]),
    ("a union reads one of its branches", ["null", "string"], "string"),
    ("a union lacks the writer's type", ["null", "string"], "int"),
    ("a plain type cannot read a nullable one", "string", ["null", "string"]),
    ("a wider union reads a narrower one", ["null", "string", "int"], ["null", "string"]),
    ("a narrower union lacks a writer branch", ["null", "string"], ["null", "string", "int"]),
    ("a union branch promoted", ["null", "long"], ["null", "int"]),
    ("a union takes an int through a promotion", ["string", "long"], "int"),
    ("long reads every branch of [int, long]", "long", ["int", "long"]),
    ("int cannot read the long branch of [int, long]", "int", ["int", "long"]),
    ("union branches reordered", ["string", "null"], ["null", "string"]),
    ("unions of records by name", ["null", ADDR, COLOR3], ["null", ADDR]),
    ("a nullable field made required",
     rec("R", fld("a", "string")), rec("R", fld("a", ["null", "string"])),
     {"compatible": False, "types": ["TYPE_MISMATCH"], "locations": ["/fields/0/type"],
      "note": "python restarts the location at '/' below a writer union; the null branch fails at /fields/0/type."}),
    ("a required field made nullable", rec("R", fld("a", ["null", "string"])), rec("R", fld("a", "string"))),
    ("a map of unions with a promotion",
     {"type": "map", "values": ["null", {"type": "array", "items": "double"}]},
     {"type": "map", "values": ["null", {"type": "array", "items": "int"}]}),
    ("decimals of another scale read as bytes",
     {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 3}, DEC),
    ("timestamp-millis reads a plain long", TS_MS, "long"),
    ("date reads a plain int", {"type": "int", "logicalType": "date"}, "int"),
    ("a union of two records with the same simple name",
     ["null", rec("R", fld("a", "int"), namespace="x")], rec("R", fld("a", "int"), namespace="y")),
]

# ---------------------------------------------------------------------------
# Resolution vectors: (name, writer, reader, writer datum[, override])
#
# An override gives the datum the specification expects ("datum"), or
# "error": True when the data cannot be read; "reader_schema" names the
# schema the expected reader binary is written with when it differs from
# the reader's (a logical type the reader does not get).

ARRAY_NOTE = "python requires array items and map values of the very same type: it does not promote them"

TS = datetime.datetime(2023, 10, 27, 10, 0, 0, 123000, tzinfo=UTC)

ITEM_DATUM = {"orderId": "a1b2c3d4", "itemId": "sku-42", "quantity": 3, "price": D("15.99"), "timestamp": TS}

RESOLVE = [
    ("OrderItemAdded v1 read as v2 takes the currency default", ITEM_V1, ITEM_V2, ITEM_DATUM),
    ("OrderItemAdded v2 read as v1 skips the currency", ITEM_V2, ITEM_V1, dict(ITEM_DATUM, currency="EUR")),
    ("OrderCreated reads itself", ORDER_CREATED, ORDER_CREATED,
     {"orderId": "a1", "customerId": "user123", "timestamp": TS}),
    ("negative and large prices", ITEM_V1, ITEM_V2,
     dict(ITEM_DATUM, price=D("-9999999999999999.99"), quantity=-2147483648)),
    ("reordered fields", rec("R", fld("a", "int"), fld("b", "string"), fld("c", "double")),
     rec("R", fld("c", "double"), fld("a", "int"), fld("b", "string")), {"a": 7, "b": "x", "c": 1.5}),
    ("int read as long", "int", "long", -5),
    ("int read as float", "int", "float", 16777217,
     {"datum": 16777216.0, "note": "python returns the int unchanged; the reader's float rounds it"}),
    ("int read as double", "int", "double", 2147483647,
     {"datum": 2147483647.0, "note": "python returns the int unchanged (the same value)"}),
    ("long read as float", "long", "float", 1 << 40,
     {"datum": float(1 << 40), "note": "python returns the int unchanged (the same value)"}),
    ("long read as double", "long", "double", -(1 << 53),
     {"datum": float(-(1 << 53)), "note": "python returns the int unchanged (the same value)"}),
    ("float read as double", "float", "double", 0.1),
    ("string read as bytes", "string", "bytes", "h\u00e9",
     {"datum": "h\u00e9".encode(), "note": "python does not promote string to bytes"}),
    ("bytes read as string", "bytes", "string", "h\u00e9".encode(),
     {"datum": "h\u00e9", "note": "python does not promote bytes to string"}),
    # Python fails here too, but because it does not promote bytes to string at all.
    ("bytes that are not UTF-8 cannot be read as string", "bytes", "string", b"\xff", {"error": True}),
    ("promotions inside a record", rec("R", fld("i", "int"), fld("l", "long"), fld("f", "float")),
     rec("R", fld("i", "double"), fld("l", "double"), fld("f", "double")), {"i": 1, "l": 2, "f": 0.5},
     {"datum": {"i": 1.0, "l": 2.0, "f": 0.5}, "note": "python returns the ints unchanged (the same values)"}),
    ("an enum symbol the reader has", COLOR3, COLOR2, "GREEN"),
    ("an enum read by a wider enum", COLOR2, COLOR3, "RED"),
    ("an unknown enum symbol takes the reader's default", COLOR3, COLOR2_DEFAULT, "BLUE",
     {"datum": "RED", "note": "python ignores the reader's enum default"}),
    ("an unknown enum symbol without a default", COLOR3, COLOR2, "BLUE", {"error": True}),
    ("a field renamed with an alias", rec("R", fld("a", "int")), rec("R", fld("b", "int", aliases=["a"])), {"a": 5},
     {"datum": {"b": 5}, "note": "python ignores reader field aliases"}),
    ("a record renamed with an alias", rec("Old", fld("a", "int")), rec("New", fld("a", "int"), aliases=["Old"]), {"a": 5},
     {"datum": {"a": 5}, "note": "python's resolution ignores the reader's type aliases"}),
    ("defaults of every kind", rec("R", fld("id", "int")),
     rec("R", fld("id", "int"),
         fld("b", "boolean", default=True), fld("i", "int", default=-3), fld("l", "long", default=1 << 40),
         fld("f", "float", default=0.25), fld("d", "double", default=1.5), fld("s", "string", default="caf\u00e9"),
         fld("n", "null", default=None), fld("a", {"type": "array", "items": "int"}, default=[1, 2]),
         fld("m", {"type": "map", "values": "long"}, default={"k": 9}),
         fld("e", COLOR3, default="BLUE"), fld("r", ADDR, default={"street": "Main St", "city": "X"}),
         fld("u", ["null", "string"], default=None), fld("v", ["string", "null"], default="first"),
         fld("t", TS_MS, default=1698400800123)),
     {"id": 1},
     {"datum": {"id": 1, "b": True, "i": -3, "l": 1 << 40, "f": 0.25, "d": 1.5, "s": "caf\u00e9", "n": None,
                "a": [1, 2], "m": {"k": 9}, "e": "BLUE", "r": {"street": "Main St", "city": "X"},
                "u": None, "v": "first", "t": TS},
      "note": "python returns the default of a timestamp-millis field as the raw long"}),
    ("a double default written as an integer", rec("R", fld("id", "int")),
     rec("R", fld("id", "int"), fld("d", "double", default=0)), {"id": 1},
     {"datum": {"id": 1, "d": 0.0}, "note": "python rejects an integer default for a double; JSON integers are valid there"}),
    ("bytes and fixed defaults are code points", rec("R", fld("id", "int")),
     rec("R", fld("id", "int"), fld("b", "bytes", default="\u00ff\u0000A"),
         fld("x", {"type": "fixed", "name": "Two", "size": 2}, default="A\u0001")), {"id": 1},
     {"datum": {"id": 1, "b": b"\xff\x00A", "x": b"A\x01"},
      "note": "python encodes bytes defaults as UTF-8; the specification maps code points 0-255 to bytes"}),
    ("a decimal default is code points too", rec("R", fld("id", "int")),
     rec("R", fld("id", "int"), fld("p", DEC, default="\u0005\u00dc")), {"id": 1},
     {"datum": {"id": 1, "p": D("15.00")}, "note": "python returns the raw (UTF-8-encoded) bytes of a decimal default"}),
    ("skipped writer fields of every kind",
     rec("R", fld("a", {"type": "array", "items": ADDR}), fld("m", {"type": "map", "values": ["null", "long"]}),
         fld("u", ["null", "string", "double"]), fld("x", MD5), fld("f", "float"), fld("d", "double"),
         fld("b", "boolean"), fld("e", COLOR3), fld("keep", "string")),
     rec("R", fld("keep", "string")),
     {"a": [{"street": "s1", "city": "c1"}, {"street": "s2", "city": "c2"}], "m": {"x": None, "y": 5},
      "u": 2.5, "x": bytes(range(16)), "f": 1.0, "d": 2.0, "b": True, "e": "BLUE", "keep": "kept"}),
    ("nullable to nullable, null", ["null", "string"], ["null", "string"], None),
    ("nullable to nullable, a string", ["null", "string"], ["null", "string"], "x"),
    ("a plain value into a union", "string", ["null", "string"], "x"),
    ("a union value into a plain type", ["null", "string"], "string", "x",
     {"datum": "x", "note": "python refuses a writer union with a non-union reader before looking at the branch; "
                            "the specification resolves the selected branch"}),
    ("a null union value into a plain type", ["null", "string"], "string", None, {"error": True}),
    ("union branches reordered and promoted", ["int", "string"], ["string", "long"], 42),
    ("int into [long, int]", "int", ["long", "int"], 7,
     {"datum": 7, "reader_branch": 1,
      "note": "the specification's letter and python take the first branch the int can be promoted to (long); "
              "we take the branch of the same type first, as Java does, so that data read with its own schema "
              "keeps its union branches"}),
    ("records in a union by name", ADDR, ["null", ADDR_ZIP_DEFAULT], {"street": "s", "city": "c"}),
    ("a record in a union across namespaces", rec("R", fld("a", "int"), namespace="x"),
     ["null", rec("R", fld("a", "int"), fld("b", "int", default=2), namespace="y")], {"a": 1},
     {"datum": {"a": 1, "b": 2},
      "note": "python matches union branches by full name; the specification matches unqualified names"}),
    ("arrays with promoted items", {"type": "array", "items": "int"}, {"type": "array", "items": "long"}, [1, -2, 3],
     {"datum": [1, -2, 3], "note": ARRAY_NOTE}),
    ("empty arrays and maps", rec("R", fld("a", {"type": "array", "items": "int"}), fld("m", {"type": "map", "values": "int"})),
     rec("R", fld("a", {"type": "array", "items": "long"}), fld("m", {"type": "map", "values": "double"})),
     {"a": [], "m": {}}, {"datum": {"a": [], "m": {}}, "note": ARRAY_NOTE}),
    ("maps with promoted values", {"type": "map", "values": "float"}, {"type": "map", "values": "double"},
     {"a": 1.5, "b": -0.25}, {"datum": {"a": 1.5, "b": -0.25}, "note": ARRAY_NOTE}),
    ("arrays of records gaining a default", {"type": "array", "items": ADDR}, {"type": "array", "items": ADDR_ZIP_DEFAULT},
     [{"street": "s1", "city": "c1"}, {"street": "s2", "city": "c2"}]),
    ("fixed", MD5, MD5, bytes(range(16))),
    ("a recursive list gaining a field", LIST, LIST_V2, {"value": 1, "next": {"value": 2, "next": None}}),
    ("a decimal read at another scale is its bytes", DEC,
     {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 3}, D("1.50"),
     {"datum": b"\x00\x96", "reader_schema": "bytes",
      "note": "python reads the decimal with the writer's scale (1.50); a decimal reader of another scale does "
              "not match, so the specification falls back to the underlying bytes"}),
    ("a fixed decimal", {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4},
     {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal", "precision": 18, "scale": 4}, D("-12.3456")),
    ("dates and times", rec("T", fld("d", {"type": "int", "logicalType": "date"}),
                            fld("tm", {"type": "int", "logicalType": "time-millis"}),
                            fld("tu", {"type": "long", "logicalType": "time-micros"}),
                            fld("ts", {"type": "long", "logicalType": "timestamp-micros"})),
     rec("T", fld("d", {"type": "int", "logicalType": "date"}),
         fld("tm", {"type": "int", "logicalType": "time-millis"}),
         fld("tu", {"type": "long", "logicalType": "time-micros"}),
         fld("ts", {"type": "long", "logicalType": "timestamp-micros"})),
     {"d": datetime.date(1969, 12, 31), "tm": datetime.time(23, 59, 59, 999000),
      "tu": datetime.time(0, 0, 0, 1), "ts": datetime.datetime(1960, 1, 1, 0, 0, 0, 1, tzinfo=UTC)}),
    ("extreme numbers", rec("N", fld("i", "int"), fld("l", "long"), fld("f", "float"), fld("d", "double")),
     rec("N", fld("i", "int"), fld("l", "long"), fld("f", "float"), fld("d", "double")),
     {"i": -2147483648, "l": -(1 << 63), "f": float("inf"), "d": float("nan")}),
    ("text in several scripts", "string", "string", "z\u00fcrich \u6771\u4eac \U0001f600 \"quoted\"\n"),
    ("a deep mix", rec("Deep", fld("tags", {"type": "map", "values": {"type": "array", "items": ["null", "int", COLOR3]}})),
     rec("Deep", fld("tags", {"type": "map", "values": {"type": "array", "items": ["null", "long", COLOR2_DEFAULT]}})),
     {"tags": {"a": [None, 1, "BLUE"], "b": []}},
     {"datum": {"tags": {"a": [None, 1, "RED"], "b": []}}, "note": "python ignores the reader's enum default"}),
]

# ---------------------------------------------------------------------------
# Canonical forms


CANONICAL = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
    {"type": "int"}, {"type": "string", "logicalType": "uuid"}, DEC, TS_MS,
    ["null", "string"],
    {"type": "array", "items": "long", "default": []},
    {"type": "map", "values": {"type": "fixed", "name": "F", "size": 1000000}},
    {"type": "fixed", "name": "md5", "namespace": "org.example", "size": 16, "aliases": ["hash"]},
    COLOR3, MD5, LIST, ADDR,
    ORDER_CREATED, ITEM_V1, ITEM_V2, ORDER_SHIPPED,
    rec("R", fld("f", rec("S", fld("g", {"type": "enum", "name": "E", "symbols": ["X"]}), namespace="c")),
        fld("h", "c.E"), namespace="a.b"),
    (rec("x.y.R", fld("f", {"type": "fixed", "name": "F", "size": 4}), fld("F", "F")),
     {"canonical": '{"name":"x.y.R","type":"record","fields":[{"name":"f","type":{"name":"x.y.F","type":"fixed","size":4}},'
                   '{"name":"F","type":"x.y.F"}]}',
      "note": "python writes the fixed in full a second time; a named type is written once, then by its full name"}),
    rec("Example", fld("inheritNull", {"type": "enum", "name": "Simple", "symbols": ["a", "b"]}),
        fld("explicitNamespace", {"type": "fixed", "name": "Simple", "namespace": "explicit", "size": 12}),
        fld("fullName", rec("a.full.Name", fld("inheritNamespace", {"type": "enum", "name": "Understanding", "symbols": ["d", "e"]}),
                            namespace="ignored"))),
    rec("Doc", fld("a", "int", doc="dropped", default=1, order="descending", aliases=["b"]), doc="dropped too", namespace=""),
]

# ---------------------------------------------------------------------------


def gen_compat():
    out = []
    for case in COMPAT:
        name, reader, writer = case[:3]
        override = case[3] if len(case) > 3 else None
        py = python_compat(reader, writer)
        entry = {"name": name, "reader": reader, "writer": writer}
        if override:
            want = {k: override[k] for k in ("compatible", "types", "locations")}
            assert py != want, f"{name}: python now agrees with the override; drop it"
            entry.update(want)
            entry["note"] = override["note"]
            entry["python"] = py
        else:
            entry.update(py)
        out.append(entry)
    return out


def gen_resolution():
    out, problems = [], []
    for case in RESOLVE:
        name, writer, reader, datum = case[:4]
        override = case[4] if len(case) > 4 else {}
        wbin = encode(writer, datum)
        py = python_resolve(writer, reader, wbin)
        # "datum" is what the writer's binary holds (a float is rounded to 32 bits).
        stored = python_resolve(writer, writer, wbin)["datum"]
        entry = {"name": name, "writer": writer, "reader": reader, "datum": tag(stored), "writer_hex": wbin.hex()}
        if override.get("error"):
            entry["error"] = True
            agrees = not py["ok"]
        else:
            if "datum" not in override and not py["ok"]:
                problems.append(f"{name}: python failed: {py}")
                continue
            want = override.get("datum", py.get("datum"))
            schema = override.get("reader_schema", reader)
            if "reader_branch" in override:  # our branch differs from python's: write it explicitly
                schema = reader[override["reader_branch"]]
                rbin = avro_long(override["reader_branch"]) + encode(schema, want)
            else:
                rbin = encode(schema, want)
            entry["expected"] = tag(want)
            entry["reader_hex"] = rbin.hex()
            if "reader_schema" in override:
                entry["reader_schema"] = override["reader_schema"]
            agrees = py["ok"] and "reader_branch" not in override and \
                json.dumps(tag(py["datum"])) == json.dumps(tag(want))
        # An override must explain a disagreement with python, and only a disagreement.
        if agrees == ("note" in override):
            problems.append(f"{name}: python {'agrees' if agrees else 'differs'}: {py}")
        if "note" in override:
            entry["note"] = override["note"]
            entry["python"] = {"ok": True, "datum": tag(py["datum"])} if py["ok"] else py
        out.append(entry)
    assert not problems, "\n".join(problems)
    return out


def avro_long(n):
    buf = io.BytesIO()
    avro.io.BinaryEncoder(buf).write_long(n)
    return buf.getvalue()


def gen_canonical():
    out = []
    for case in CANONICAL:
        s, override = case if isinstance(case, tuple) else (case, None)
        py, fixed = canonical(s)
        entry = {"schema": s, "canonical": fixed, "fingerprint": str(fingerprint64(fixed.encode()))}
        if override:
            assert override["canonical"] != py, "python now agrees; drop the override"
            entry["canonical"] = override["canonical"]
            entry["fingerprint"] = str(fingerprint64(override["canonical"].encode()))
            entry["note"] = override["note"]
            entry["python_canonical"] = py
        elif py != fixed:
            entry["note"] = "python keeps {\"type\": ...} for a primitive with a logicalType; [PRIMITIVES] makes it the bare name"
            entry["python_canonical"] = py
        out.append(entry)
    return out


def write(name, data):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")
    print(f"wrote {len(data)} entries to {os.path.relpath(path)}")


if __name__ == "__main__":
    write("golden_compat.json", gen_compat())
    write("golden_resolution.json", gen_resolution())
    write("golden_canonical.json", gen_canonical())
