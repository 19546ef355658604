#!/usr/bin/env python3
"""Generates the typed Swift layer over protoc-c's output.

For every message of Proto/*.proto (except wire.proto, which ChorusWire handles by hand) it writes a Swift
struct with Codable (JSON keys are the .proto field names) and a bridge to the protobuf-c C struct, so Swift
code never touches protobuf-c pointers. For every service it writes a method catalogue, a handler protocol
and a client.

It understands the subset of proto3 the contract uses: messages, enums, scalar/string/bytes/message/enum
fields, `repeated`, imports by full name, services with `stream` on either side. Anything else is an error,
so the contract cannot silently drift out of what the generator supports.
"""
import re
import sys
from pathlib import Path

SCALARS = {
    # proto type: (Swift type, default, C-to-Swift expression template, Swift-to-C template)
    "double": ("Double", "0", "{}", "{}"),
    "float": ("Float", "0", "{}", "{}"),
    "int32": ("Int32", "0", "{}", "{}"),
    "sint32": ("Int32", "0", "{}", "{}"),
    "sfixed32": ("Int32", "0", "{}", "{}"),
    "int64": ("Int64", "0", "{}", "{}"),
    "sint64": ("Int64", "0", "{}", "{}"),
    "sfixed64": ("Int64", "0", "{}", "{}"),
    "uint32": ("UInt32", "0", "{}", "{}"),
    "fixed32": ("UInt32", "0", "{}", "{}"),
    "uint64": ("UInt64", "0", "{}", "{}"),
    "fixed64": ("UInt64", "0", "{}", "{}"),
    "bool": ("Bool", "false", "({} != 0)", "({} ? 1 : 0)"),
}

SWIFT_KEYWORDS = {"default", "protocol", "extension", "func", "class", "struct", "enum", "in", "repeat",
                  "return", "self", "Self", "Type", "var", "let", "static", "import", "operator", "where",
                  "internal", "public", "private", "init", "deinit", "subscript", "case", "switch", "is",
                  "as", "try", "throw", "throws", "inout", "true", "false", "nil", "if", "else", "for",
                  "while", "do", "break", "continue", "guard", "defer", "fallthrough", "associatedtype"}


def camel(name, upper=False):
    parts = name.split("_")
    out = parts[0].lower() + "".join(p[:1].upper() + p[1:].lower() for p in parts[1:])
    return out[:1].upper() + out[1:] if upper else out


def ident(name):
    return f"`{name}`" if name in SWIFT_KEYWORDS else name


def camel_to_lower(name):
    """protoc-c's CamelToLower: 'TextToImageRequest' -> 'text_to_image_request'."""
    out = ""
    for i, ch in enumerate(name):
        if ch.isupper() and i > 0 and not name[i - 1].isupper():
            out += "_"
        out += ch.lower()
    return out


class Proto:
    def __init__(self, path):
        self.path = path
        self.package = ""
        self.messages = []  # (name, [fields], comment)
        self.enums = []     # (name, [(value_name, number)])
        self.services = []  # (name, [methods])
        self.parse(Path(path).read_text())

    def parse(self, text):
        text = re.sub(r"//[^\n]*", "", text)
        tokens = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*|\d+|\"[^\"]*\"|[{}();=<>,\[\]]", text)
        i = 0

        def expect(tok):
            nonlocal i
            if tokens[i] != tok:
                raise SystemExit(f"{self.path}: expected {tok!r}, got {tokens[i]!r}")
            i += 1

        while i < len(tokens):
            t = tokens[i]
            if t == "syntax":
                i += 4
            elif t == "package":
                self.package = tokens[i + 1]
                i += 3
            elif t == "import":
                i += 3
            elif t == "message":
                name = tokens[i + 1]
                i += 3
                fields = []
                while tokens[i] != "}":
                    label = ""
                    if tokens[i] in ("repeated",):
                        label = tokens[i]
                        i += 1
                    if tokens[i] in ("oneof", "map", "optional", "message", "enum", "reserved"):
                        raise SystemExit(f"{self.path}: {name}: '{tokens[i]}' is outside the supported subset")
                    ftype, fname, number = tokens[i], tokens[i + 1], int(tokens[i + 3])
                    i += 4
                    expect(";")
                    fields.append({"label": label, "type": ftype, "name": fname, "number": number})
                i += 1
                self.messages.append((name, fields))
            elif t == "enum":
                name = tokens[i + 1]
                i += 3
                values = []
                while tokens[i] != "}":
                    values.append((tokens[i], int(tokens[i + 2])))
                    i += 3
                    expect(";")
                i += 1
                self.enums.append((name, values))
            elif t == "service":
                name = tokens[i + 1]
                i += 3
                methods = []
                while tokens[i] != "}":
                    expect("rpc")
                    mname = tokens[i]
                    i += 1
                    expect("(")
                    in_stream = tokens[i] == "stream"
                    i += in_stream
                    in_type = tokens[i]
                    i += 1
                    expect(")")
                    expect("returns")
                    expect("(")
                    out_stream = tokens[i] == "stream"
                    i += out_stream
                    out_type = tokens[i]
                    i += 1
                    expect(")")
                    expect(";")
                    methods.append({"name": mname, "in": in_type, "out": out_type,
                                    "in_stream": in_stream, "out_stream": out_stream})
                i += 1
                self.services.append((name, methods))
            else:
                raise SystemExit(f"{self.path}: unexpected token {t!r}")


class Registry:
    def __init__(self, protos):
        self.types = {}  # full name -> (kind, proto, name)
        for p in protos:
            for name, _ in p.messages:
                self.types[f"{p.package}.{name}"] = ("message", p, name)
            for name, _ in p.enums:
                self.types[f"{p.package}.{name}"] = ("enum", p, name)
        swift_names = {}
        for full, (_, _, name) in self.types.items():
            if name in swift_names:
                raise SystemExit(f"two types would both be Swift '{name}': {swift_names[name]} and {full}")
            swift_names[name] = full

    def resolve(self, proto, tname):
        full = tname if "." in tname else f"{proto.package}.{tname}"
        if full not in self.types:
            raise SystemExit(f"{proto.path}: unknown type {tname}")
        return self.types[full]

    @staticmethod
    def c_type(proto, name):
        return "__".join(part[:1].upper() + part[1:] for part in proto.package.split(".")) + "__" + name

    @staticmethod
    def c_func(proto, name):
        return proto.package.replace(".", "__") + "__" + camel_to_lower(name)


def enum_cases(values):
    names = [v for v, _ in values]
    prefix = ""
    first = names[0]
    if first.endswith("_UNSPECIFIED"):
        prefix = first[: -len("UNSPECIFIED")]
    out = []
    for v, n in values:
        short = v[len(prefix):] if prefix and v.startswith(prefix) else v
        out.append((ident(camel(short)), v, n))
    return out


def gen_enum(name, values):
    cases = enum_cases(values)
    lines = [f"public enum {name}: Int32, ChorusEnum {{"]
    for case, _, n in cases:
        lines.append(f"    case {case} = {n}")
    lines.append("")
    lines.append("    public static let protoNames: [Self: String] = [")
    lines.append(",\n".join(f"        .{case}: \"{v}\"" for case, v, _ in cases))
    lines.append("    ]")
    lines.append("}")
    return "\n".join(lines)


def gen_message(reg, proto, name, fields):
    ctype = reg.c_type(proto, name)
    cfunc = reg.c_func(proto, name)
    props, inits, params, from_c, to_c, keys, dec, enc = [], [], [], [], [], [], [], []
    for f in fields:
        pname = ident(camel(f["name"]))
        raw = camel(f["name"])
        cname = f["name"]
        rep = f["label"] == "repeated"
        t = f["type"]
        if t in SCALARS:
            swift, default, c2s, s2c = SCALARS[t]
            kind = "scalar"
        elif t == "string":
            swift, default, kind = "String", '""', "string"
        elif t == "bytes":
            swift, default, kind = "Data", "Data()", "bytes"
        else:
            k, tp, tname = reg.resolve(proto, t)
            if k == "enum":
                zero = next(case for case, _, n in enum_cases(dict(tp.enums)[tname]) if n == 0)
                swift, default, kind = tname, f"{tname}.{zero}", "enum"
            else:
                swift, default, kind = tname, "nil", "message"
                sub_c = reg.c_type(tp, tname)
        if rep:
            full_t, full_default = f"[{swift}]", "[]"
        elif kind == "message":
            full_t, full_default = f"{swift}?", "nil"
        else:
            full_t, full_default = swift, default
        props.append(f"    public var {pname}: {full_t}")
        params.append(f"{pname}: {full_t} = {full_default}")
        inits.append(f"        self.{raw} = {raw}")
        keys.append(f"        case {pname} = \"{f['name']}\"")
        dec.append(f"        self.{raw} = try c.decodeIfPresent({full_t.rstrip('?')}.self, forKey: .{raw}) ?? {full_default}")
        if kind == "message" and not rep:
            enc.append(f"        try c.encodeIfPresent({raw}, forKey: .{raw})")
        else:
            enc.append(f"        try c.encode({raw}, forKey: .{raw})")
        src = f"c.pointee.{ident(cname)}"
        if not rep:
            if kind == "scalar":
                from_c.append(f"        self.{raw} = {c2s.format(src)}")
                to_c.append(f"        c.pointee.{ident(cname)} = {s2c.format(raw)}")
            elif kind == "string":
                from_c.append(f"        self.{raw} = CBridge.string({src})")
                to_c.append(f"        c.pointee.{ident(cname)} = arena.string({raw})")
            elif kind == "bytes":
                from_c.append(f"        self.{raw} = CBridge.take(&UnsafeMutablePointer(mutating: c).pointee.{ident(cname)})")
                to_c.append(f"        c.pointee.{ident(cname)} = arena.bytes({raw})")
            elif kind == "enum":
                from_c.append(f"        self.{raw} = {swift}(cValue: {src}.rawValue)")
                to_c.append(f"        c.pointee.{ident(cname)} = .init(rawValue: numericCast({raw}.rawValue))")
            else:
                from_c.append(f"        self.{raw} = {src}.map {{ {swift}(c: $0) }}")
                to_c.append(f"        c.pointee.{ident(cname)} = {raw}.map {{ $0.bridged(arena) }}")
        else:
            n = f"c.pointee.n_{cname}"
            if kind == "scalar":
                if t == "bool":
                    from_c.append(f"        self.{raw} = CBridge.array({src}, {n}).map {{ $0 != 0 }}")
                    to_c.append(f"        (c.pointee.n_{cname}, c.pointee.{ident(cname)}) = arena.array({raw}.map {{ $0 ? 1 : 0 }})")
                else:
                    from_c.append(f"        self.{raw} = CBridge.array({src}, {n})")
                    to_c.append(f"        (c.pointee.n_{cname}, c.pointee.{ident(cname)}) = arena.array({raw})")
            elif kind == "string":
                from_c.append(f"        self.{raw} = CBridge.array({src}, {n}).map {{ CBridge.string($0) }}")
                to_c.append(f"        (c.pointee.n_{cname}, c.pointee.{ident(cname)}) = arena.array({raw}.map {{ Optional(arena.string($0)) }})")
            elif kind == "bytes":
                from_c.append(f"        self.{raw} = CBridge.takeAll({src}, {n})")
                to_c.append(f"        (c.pointee.n_{cname}, c.pointee.{ident(cname)}) = arena.array({raw}.map {{ arena.bytes($0) }})")
            elif kind == "enum":
                from_c.append(f"        self.{raw} = CBridge.array({src}, {n}).map {{ {swift}(cValue: $0.rawValue) }}")
                to_c.append(f"        (c.pointee.n_{cname}, c.pointee.{ident(cname)}) = arena.array({raw}.map {{ .init(rawValue: numericCast($0.rawValue)) }})")
            else:
                from_c.append(f"        self.{raw} = CBridge.array({src}, {n}).map {{ {swift}(c: $0!) }}")
                to_c.append(f"        (c.pointee.n_{cname}, c.pointee.{ident(cname)}) = arena.array({raw}.map {{ Optional($0.bridged(arena)) }})")

    out = [f"public struct {name}: ChorusMessage {{"]
    out += props
    out.append("")
    if params:
        out.append(f"    public init({', '.join(params)}) {{")
        out += inits
        out.append("    }")
    else:
        out.append("    public init() {}")
    out.append("")
    if fields:
        out.append("    enum CodingKeys: String, CodingKey {")
        out += keys
        out.append("    }")
        out.append("")
        out.append("    public init(from decoder: Decoder) throws {")
        out.append("        let c = try decoder.container(keyedBy: CodingKeys.self)")
        out += dec
        out.append("    }")
        out.append("")
        out.append("    public func encode(to encoder: Encoder) throws {")
        out.append("        var c = encoder.container(keyedBy: CodingKeys.self)")
        out += enc
        out.append("    }")
    else:
        out.append("    public init(from decoder: Decoder) throws {}")
        out.append("    public func encode(to encoder: Encoder) throws {}")
    out.append("}")
    out.append("")
    out.append(f"extension {name}: CBridgedMessage {{")
    out.append(f"    public typealias CStruct = {ctype}")
    out.append("")
    out.append(f"    public init(c: UnsafePointer<{ctype}>) {{")
    out += from_c
    out.append("    }")
    out.append("")
    out.append(f"    public func fill(_ c: UnsafeMutablePointer<{ctype}>, _ arena: CArena) {{")
    out.append(f"        {cfunc}__init(c)")
    out += to_c
    out.append("    }")
    out.append("")
    out.append(f"    public static func cUnpack(_ count: Int, _ bytes: UnsafePointer<UInt8>?) -> UnsafeMutablePointer<{ctype}>? {{ {cfunc}__unpack(nil, count, bytes) }}")
    out.append(f"    public static func cFree(_ c: UnsafeMutablePointer<{ctype}>) {{ {cfunc}__free_unpacked(c, nil) }}")
    out.append(f"    public static func cPackedSize(_ c: UnsafePointer<{ctype}>) -> Int {{ {cfunc}__get_packed_size(c) }}")
    out.append(f"    public static func cPack(_ c: UnsafePointer<{ctype}>, _ out: UnsafeMutablePointer<UInt8>) -> Int {{ {cfunc}__pack(c, out) }}")
    out.append("}")
    return "\n".join(out), [f"{cfunc}__init", f"{cfunc}__unpack", f"{cfunc}__pack", ctype]


def rpc_kind(m):
    return {(False, False): "unary", (False, True): "serverStreaming",
            (True, False): "clientStreaming", (True, True): "bidirectionalStreaming"}[(m["in_stream"], m["out_stream"])]


def gen_service(reg, proto, name, methods):
    full = f"{proto.package}.{name}"
    t = lambda tn: reg.resolve(proto, tn)[2]
    out = [f"/// The `{full}` service: method names and kinds, the handler protocol, the client."]
    out.append(f"public enum {name} {{")
    out.append(f"    public static let serviceName = \"{full}\"")
    out.append("")
    out.append("    public enum Method {")
    for m in methods:
        out.append(f"        public static let {camel_lower(m['name'])} = MethodDescriptor(service: \"{full}\", method: \"{m['name']}\", kind: .{rpc_kind(m)})")
    out.append("    }")
    out.append("")
    out.append("    /// Every method with JSON bridges, for `chorus call` and the gateway's HTTP front.")
    out.append("    public static let methods: [AnyMethod] = [")
    out.append(",\n".join(f"        AnyMethod(Method.{camel_lower(m['name'])}, request: {t(m['in'])}.self, response: {t(m['out'])}.self)" for m in methods))
    out.append("    ]")
    out.append("}")
    out.append("")
    out.append(f"public protocol {name}Handler: Sendable {{")
    for m in methods:
        fn, req, res = camel_lower(m["name"]), t(m["in"]), t(m["out"])
        k = rpc_kind(m)
        if k == "unary":
            out.append(f"    func {fn}(_ request: {req}, context: CallContext) async throws -> {res}")
        elif k == "serverStreaming":
            out.append(f"    func {fn}(_ request: {req}, context: CallContext, responses: ResponseWriter<{res}>) async throws")
        elif k == "clientStreaming":
            out.append(f"    func {fn}(_ requests: RequestStream<{req}>, context: CallContext) async throws -> {res}")
        else:
            out.append(f"    func {fn}(_ requests: RequestStream<{req}>, context: CallContext, responses: ResponseWriter<{res}>) async throws")
    out.append("}")
    out.append("")
    out.append(f"extension {name}Handler {{")
    out.append("    /// The server routes of this handler, to register with a `WireServer`.")
    out.append("    public var routes: [ServerRoute] {")
    out.append("        [")
    rows = []
    for m in methods:
        fn = camel_lower(m["name"])
        k = rpc_kind(m)
        if k == "unary":
            rows.append(f"            .unary({name}.Method.{fn}) {{ (r: {t(m['in'])}, c) in try await self.{fn}(r, context: c) }}")
        elif k == "serverStreaming":
            rows.append(f"            .serverStreaming({name}.Method.{fn}) {{ (r: {t(m['in'])}, c, w: ResponseWriter<{t(m['out'])}>) in try await self.{fn}(r, context: c, responses: w) }}")
        elif k == "clientStreaming":
            rows.append(f"            .clientStreaming({name}.Method.{fn}) {{ (s: RequestStream<{t(m['in'])}>, c) in try await self.{fn}(s, context: c) }}")
        else:
            rows.append(f"            .bidirectionalStreaming({name}.Method.{fn}) {{ (s: RequestStream<{t(m['in'])}>, c, w: ResponseWriter<{t(m['out'])}>) in try await self.{fn}(s, context: c, responses: w) }}")
    out.append(",\n".join(rows))
    out.append("        ]")
    out.append("    }")
    out.append("}")
    out.append("")
    out.append(f"public struct {name}Client: Sendable {{")
    out.append("    public let channel: any WireChannel")
    out.append("    public init(_ channel: any WireChannel) { self.channel = channel }")
    for m in methods:
        fn, req, res = camel_lower(m["name"]), t(m["in"]), t(m["out"])
        k = rpc_kind(m)
        out.append("")
        if k == "unary":
            out.append(f"    public func {fn}(_ request: {req}, options: CallOptions = .init()) async throws -> {res} {{")
            out.append(f"        try await channel.unary({name}.Method.{fn}, request, as: {res}.self, options: options)")
        elif k == "serverStreaming":
            out.append(f"    public func {fn}(_ request: {req}, options: CallOptions = .init()) -> ResponseStream<{res}> {{")
            out.append(f"        channel.serverStreaming({name}.Method.{fn}, request, as: {res}.self, options: options)")
        elif k == "clientStreaming":
            out.append(f"    public func {fn}<S: AsyncSequence & Sendable>(_ requests: S, options: CallOptions = .init()) async throws -> {res} where S.Element == {req} {{")
            out.append(f"        try await channel.clientStreaming({name}.Method.{fn}, requests, as: {res}.self, options: options)")
        else:
            out.append(f"    public func {fn}<S: AsyncSequence & Sendable>(_ requests: S, options: CallOptions = .init()) -> ResponseStream<{res}> where S.Element == {req} {{")
            out.append(f"        channel.bidirectionalStreaming({name}.Method.{fn}, requests, as: {res}.self, options: options)")
        out.append("    }")
    out.append("}")
    return "\n".join(out)


def camel_lower(name):
    return name[:1].lower() + name[1:]


HEADER = "// Generated by scripts/protogen_swift.py from Proto/{src}. Do not edit: run scripts/gen-proto.\n\nimport ChorusProto\nimport ChorusWire\nimport Foundation\n"


def main():
    proto_dir, out_dir, header_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    protos = [Proto(p) for p in sorted(proto_dir.glob("*.proto")) if p.name != "wire.proto"]
    reg = Registry(protos)
    out_dir.mkdir(parents=True, exist_ok=True)
    headers = "".join(p.read_text() for p in header_dir.glob("*.pb-c.h"))
    for p in protos:
        parts = [HEADER.format(src=Path(p.path).name)]
        for name, values in p.enums:
            parts.append(gen_enum(name, values))
        for name, fields in p.messages:
            code, symbols = gen_message(reg, p, name, fields)
            for s in symbols:
                if s not in headers:
                    raise SystemExit(f"protoc-c did not generate {s}; the name mapping in protogen_swift.py is off")
            parts.append(code)
        for name, methods in p.services:
            parts.append(gen_service(reg, p, name, methods))
        stem = Path(p.path).stem
        (out_dir / f"{stem[:1].upper() + stem[1:]}.pb.swift").write_text("\n\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
