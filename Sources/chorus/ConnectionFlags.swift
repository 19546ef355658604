import ArgumentParser
import ChorusWire
import NIOCore

/// What one client may hold of a wire server, for services and the gateway alike.
struct ConnectionFlags: ParsableArguments {
    @Option(help: "Connections open at once; past it new ones are told RESOURCE_EXHAUSTED and closed.")
    var maxConnections = 1024

    @Option(help: "Streams (calls) open at once on one connection.")
    var maxStreamsPerConnection = 1024

    @Option(help: "Seconds a connection with no open call may stay silent (no frame, not even a PING) before it is closed; 0 = never.")
    var idleTimeout = 120

    @Option(help: "MiB of request messages that may wait for handlers in the whole process; past it a message fails its call with RESOURCE_EXHAUSTED. One connection stops being read at a sixteenth of it.")
    var maxBufferedMib = 1024

    func validate() throws {
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1 ... 1000000") }
        guard (1...1_000_000).contains(maxStreamsPerConnection) else { throw ValidationError("--max-streams-per-connection must be 1 ... 1000000") }
        guard (0...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be 0 (never) ... 86400 seconds") }
        guard (1...65_536).contains(maxBufferedMib) else { throw ValidationError("--max-buffered-mib must be 1 ... 65536") }
    }

    /// One connection is paused at a sixteenth of the process's budget, so one client cannot take it all.
    var limits: WireServer.Limits {
        WireServer.Limits(maxConnections: maxConnections, maxStreamsPerConnection: maxStreamsPerConnection,
                          idleTimeout: idleTimeout == 0 ? nil : .seconds(Int64(idleTimeout)),
                          maxBufferedBytesPerConnection: max(1, maxBufferedMib / 16) << 20, maxBufferedBytes: maxBufferedMib << 20)
    }
}
