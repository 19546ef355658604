import ChorusWire
import Dispatch
import Foundation

/// Where a service's replicas come from, as the gateway's `--vision`, `--diffusion` and `--speech` entries say:
/// a fixed `host:port`; `dns:///name:port`, every address the name resolves to (a Kubernetes headless Service has
/// one per ready pod; /etc/hosts and the system resolver answer too); or `file:///path`, one `host:port` a line
/// (`#` comments), which anything can rewrite. Names and files are read again every discovery interval.
public enum ReplicaSource: Sendable, Equatable, CustomStringConvertible {
    case fixed(String)
    case dns(host: String, port: Int)
    case file(String)

    /// The most addresses one name or file may give: a lookup or file past it is refused, not truncated.
    static let maxAddresses = 1024

    public init(_ text: String) throws {
        if text.hasPrefix("dns:///") {
            let rest = String(text.dropFirst("dns:///".count))
            guard rest.contains(":"), !rest.hasPrefix(":"), let (host, port) = try? parseAddress(rest), port > 0 else {
                throw WireStatus(.invalidArgument, "'\(text)' is not dns:///name:port (e.g. dns:///chorus-speech.default.svc:7103)")
            }
            self = .dns(host: host, port: port)
        } else if text.hasPrefix("file://") {
            let path = String(text.dropFirst("file://".count))
            guard path.hasPrefix("/") else { throw WireStatus(.invalidArgument, "'\(text)' is not file:///absolute/path") }
            self = .file(path)
        } else {
            _ = try parseAddress(text)
            self = .fixed(text)
        }
    }

    public var description: String {
        switch self {
        case .fixed(let address): return address
        case .dns(let host, let port): return "dns:///\(host):\(port)"
        case .file(let path): return "file://\(path)"
        }
    }

    public var isDynamic: Bool {
        if case .fixed = self { return false }
        return true
    }

    /// The addresses the source names now, sorted.
    func resolve() async throws -> [String] {
        switch self {
        case .fixed(let address):
            let (host, port) = try parseAddress(address)
            return ["\(host):\(port)"]
        case .dns(let host, let port):
            // As WireClient names its address: "host:port", an IPv6 host unbracketed (parseAddress splits at the last colon).
            return try await Self.lookUp(host).map { "\($0):\(port)" }
        case .file(let path):
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw WireStatus(.notFound, "cannot read the replica list \(path)")
            }
            defer { try? handle.close() }
            let data = try handle.read(upToCount: 1 << 20) ?? Data()
            let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
                .map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && !$0.hasPrefix("#") }
            guard lines.count <= Self.maxAddresses else {
                throw WireStatus(.resourceExhausted, "\(path) lists \(lines.count) replicas; the limit is \(Self.maxAddresses)")
            }
            return Array(Set(try lines.map { line in
                let (host, port) = try parseAddress(line)
                return "\(host):\(port)"
            })).sorted()
        }
    }

    /// Every IPv4 and IPv6 address of `host`, through the system resolver (getaddrinfo: /etc/hosts, DNS), on a
    /// thread of its own: a slow resolver holds no task of the gateway's.
    static func lookUp(_ host: String) async throws -> [String] {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_family = AF_UNSPEC
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)  // checked: a socket type constant, 1
                var list: UnsafeMutablePointer<addrinfo>?
                let status = getaddrinfo(host, nil, &hints, &list)
                guard status == 0 else {
                    continuation.resume(throwing: WireStatus(.unavailable, "cannot resolve \(host): \(String(cString: gai_strerror(status)))"))
                    return
                }
                defer { freeaddrinfo(list) }
                var addresses = Set<String>()
                var entry = list
                while let current = entry, addresses.count <= maxAddresses {
                    var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))  // checked: a constant, 1025
                    if let address = current.pointee.ai_addr,
                       getnameinfo(address, current.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                        addresses.insert(String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
                    }
                    entry = current.pointee.ai_next
                }
                guard addresses.count <= maxAddresses else {
                    continuation.resume(throwing: WireStatus(.resourceExhausted, "\(host) resolves to more than \(maxAddresses) addresses"))
                    return
                }
                continuation.resume(returning: addresses.sorted())
            }
        }
    }
}
