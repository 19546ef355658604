import ChorusAPI
import ChorusWire
import Foundation
import NIOCore
import NIOHTTP1

/// Reads a server's own figures before and after a level: what the generator cannot see (queue depth,
/// peak memory, the calls the server counted).
public protocol ServerProbe: Sendable {
    func figures() async -> ServerFigures?
}

/// A service's or the gateway's `Status` over the wire; a gateway's replicas come with their own.
public struct WireStatusProbe: ServerProbe {
    let channel: any WireChannel
    let path: String

    /// `service` is the full service name ("chorus.speech.v1.Speech").
    public init(channel: any WireChannel, service: String) {
        self.channel = channel
        path = "/\(service)/Status"
    }

    public func figures() async -> ServerFigures? {
        do {
            let call = try await channel.open(path, options: CallOptions(deadline: .now() + .seconds(5)),
                                              first: try StatusRequest().wireBuffer(), endOfStream: true)
            var status: ServiceStatus?
            for try await part in call.responses where status == nil { status = try ServiceStatus(wireBuffer: part.payload) }
            guard let status else { return nil }
            var figures = Self.figures(status)
            for replica in status.replicas {
                if let inner = replica.status { figures.backends["\(replica.service) \(replica.address)"] = Self.figures(inner) }
            }
            return figures
        } catch {
            return nil
        }
    }

    static func figures(_ status: ServiceStatus) -> ServerFigures {
        ServerFigures(inFlight: Int(status.inFlight), queueDepth: Int(status.queueDepth), residentBytes: status.residentBytes,  // checked: UInt32 fits Int
                      peakResidentBytes: status.peakResidentBytes, callsTotal: status.callsTotal, callsFailed: status.callsFailed)
    }
}

/// The gateway's HTTP `/metrics`: requests in flight and counted, the failed ones by status.
public struct HTTPMetricsProbe: ServerProbe {
    let pool: HTTPConnectionPool

    public init(target: String, security: ConnectionSecurity?) throws {
        let (host, port) = try HTTPLoadCaller.hostAndPort(target)
        pool = HTTPConnectionPool(host: host, port: port, security: security)
    }

    public func figures() async -> ServerFigures? {
        guard let connection = try? await pool.take() else { return nil }
        defer { connection.close() }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/metrics", headers: ["Host": pool.host])
        var text: [UInt8] = []
        do {
            for try await part in connection.send(head, body: ByteBuffer()) {
                if case .body(let buffer) = part { text += buffer.readableBytesView }
            }
        } catch {
            return nil
        }
        return Self.parse(String(decoding: text, as: UTF8.self))
    }

    /// Sums the HTTP series of Prometheus text.
    static func parse(_ text: String) -> ServerFigures {
        var inFlight = 0.0, total = 0.0, failed = 0.0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]), value.isFinite else { continue }
            if line.hasPrefix("chorus_http_requests_in_flight") { inFlight += value }
            if line.hasPrefix("chorus_http_requests_total") {
                total += value
                if !line.contains("status=\"2") { failed += value }
            }
        }
        return ServerFigures(inFlight: Int(clamping: Int64(max(0, min(inFlight, 1e15)))), queueDepth: 0, residentBytes: 0, peakResidentBytes: 0,  // checked: clamped
                             callsTotal: UInt64(max(0, min(total, 1e15))), callsFailed: UInt64(max(0, min(failed, 1e15))))  // checked: clamped
    }
}
