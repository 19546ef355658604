import NIOCore

/// Transport security for wire connections: handlers put first in every connection's pipeline, below
/// the frames (TLS, from ChorusTLS). The wire itself stays plain TCP when none is given, and knows no
/// TLS library: the fuzzers and tests that link ChorusWire do not build one.
public struct ConnectionSecurity: Sendable {
    /// What the logs call it ("TLS").
    public let name: String
    /// A new handler for one accepted connection.
    public let serverHandler: @Sendable () throws -> ChannelHandler
    /// A new handler for one connection to `host` (the name the server's certificate must carry).
    public let clientHandler: @Sendable (_ host: String) throws -> ChannelHandler

    public init(name: String, serverHandler: @escaping @Sendable () throws -> ChannelHandler,
                clientHandler: @escaping @Sendable (_ host: String) throws -> ChannelHandler) {
        self.name = name
        self.serverHandler = serverHandler
        self.clientHandler = clientHandler
    }
}
