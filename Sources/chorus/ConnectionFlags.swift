import ArgumentParser
import ChorusTLS
import ChorusWire
import Foundation
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

/// Where and how a wire server listens, the same for every service and the gateway (STYLE.md: the same
/// flags everywhere).
struct ListenerFlags: ParsableArguments {
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (default: gateway 7100, vision 7101, diffusion 7102, speech 7103); 0 picks a free one (the log line 'listening on' names it).")
    var port: Int?

    @Option(help: "Largest frame accepted, in MiB; larger ones are refused with RESOURCE_EXHAUSTED.")
    var maxFrameMib = 64

    @Option(help: "Seconds open calls get to finish after SIGTERM before they are cut off.")
    var drainGrace = 30

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @OptionGroup var connections: ConnectionFlags

    @Option(help: "TLS on this listener: the certificate chain (PEM); give --tls-key with it. Clients then need the CA (chorus call --tls-ca, gateway --service-tls-ca).")
    var tlsCert: String?

    @Option(help: "TLS on this listener: the private key (PEM) of --tls-cert.")
    var tlsKey: String?

    /// TLS when both files are given (checked at start, so a bad file stops the process with its name).
    func security() throws -> ConnectionSecurity? {
        guard let tlsCert, let tlsKey else { return nil }
        return try TLS.server(certificateChain: tlsCert, privateKey: tlsKey)
    }

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("give --tls-cert and --tls-key together") }
        if let port { guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 (any) ... 65535") } }
        guard (1...2048).contains(maxFrameMib) else { throw ValidationError("--max-frame-mib must be 1 ... 2048") }
        guard (0...86_400).contains(drainGrace) else { throw ValidationError("--drain-grace must be 0 ... 86400 seconds") }
    }
}

/// Where the client commands (call, health, load) connect when --target is not given: $CHORUS_TARGET, so a shell
/// (or the doc tests) can point them all at one stack, else the gateway's default address.
enum ConnectionDefaults {
    static var target: String {
        let configured = ProcessInfo.processInfo.environment["CHORUS_TARGET"]?.trimmingCharacters(in: .whitespaces) ?? ""
        return configured.isEmpty ? "127.0.0.1:7100" : configured
    }
}
