import Foundation

/// A shared secret for native calls: `authorization: Bearer <key>` metadata, compared in constant
/// time so it cannot be guessed byte by byte. The gateway checks its clients' key; services check the
/// key the gateway presents, so a service exposed by mistake is not open to anyone who reaches it.
public struct APIKey: Sendable {
    public let key: String

    /// nil for no key (nil or empty).
    public init?(_ key: String?) {
        guard let key, !key.isEmpty else { return nil }
        self.key = key
    }

    /// The key from a flag, else a file (its first line), else an environment variable; nil if none.
    public static func load(flag: String?, file: String?, environment variable: String) throws -> APIKey? {
        if let flag { return APIKey(flag) }
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw WireStatus(.failedPrecondition, "cannot read the API key file \(file)")
            }
            guard let key = APIKey(text.split(whereSeparator: \.isNewline).first.map(String.init)) else {
                throw WireStatus(.failedPrecondition, "the API key file \(file) is empty")
            }
            return key
        }
        return APIKey(ProcessInfo.processInfo.environment[variable])
    }

    /// The metadata a caller sends.
    public var metadata: [String: String] { ["authorization": "Bearer \(key)"] }

    /// Throws UNAUTHENTICATED unless `metadata` carries this key. `who` names the checker in the message.
    public func check(_ metadata: [String: String], who: String) throws {
        let given = Array((metadata["authorization"] ?? "").utf8)
        guard constantTimeEqual(given, Array("Bearer \(key)".utf8)) else {
            throw WireStatus(.unauthenticated, given.isEmpty ? "\(who) requires an API key: send metadata authorization: Bearer <key>" : "incorrect API key")
        }
    }

    /// `routes` requiring the key, except Health, which probes and load balancers call without one.
    public func guarding(_ routes: [ServerRoute], who: String) -> [ServerRoute] {
        routes.map { route in
            guard !route.path.hasSuffix("/Health") else { return route }
            return ServerRoute(path: route.path, takesOneRequest: route.takesOneRequest) { call in
                try check(call.context.metadata, who: who)
                return try await route.handler(call)
            }
        }
    }

    /// A loop relay taking only calls with the key: the others go to the guarded fallback, which refuses them.
    public func guarding(_ relay: @escaping LoopRelay, who: String) -> LoopRelay {
        { call in
            (try? check(call.metadata, who: who)) != nil && relay(call)
        }
    }

    /// A fallback handler requiring the key.
    public func guarding(_ handler: @escaping ServerRoute.RawHandler, who: String) -> ServerRoute.RawHandler {
        { call in
            try check(call.context.metadata, who: who)
            return try await handler(call)
        }
    }
}

/// Equal bytes, in a time that depends only on the lengths.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}
