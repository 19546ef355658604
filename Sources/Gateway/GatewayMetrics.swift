import Foundation
import Synchronization

/// Counters and latency histograms of the gateway, rendered in Prometheus' text format: native calls
/// by method and status code, HTTP requests by route and status, what is in flight. Fixed buckets and
/// one lock: recording costs a dictionary update, far below a forwarded call.
public final class GatewayMetrics: Sendable {
    /// Seconds; from 1 ms (a forwarded echo) to 2 minutes (a long transcription).
    static let buckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120]

    struct Histogram {
        var counts = [UInt64](repeating: 0, count: GatewayMetrics.buckets.count)
        var count: UInt64 = 0
        var sum = 0.0

        mutating func observe(_ seconds: Double) {
            for (i, bound) in GatewayMetrics.buckets.enumerated() where seconds <= bound { counts[i] += 1 }
            count += 1
            sum += seconds
        }
    }

    struct Series {
        /// (labels, code) → calls
        var calls: [[String]: UInt64] = [:]
        var latency: [[String]: Histogram] = [:]
        var inFlight: [[String]: Int] = [:]
    }

    private let native = Mutex(Series())
    private let http = Mutex(Series())

    public init() {}

    /// A native call through the gateway has started; the returned closure records its end.
    public func nativeCallStarted(method: String) -> @Sendable (_ code: String) -> Void {
        track(http: false, labels: [method])
    }

    /// An HTTP request has started; the returned closure records its end with the HTTP status.
    public func httpRequestStarted(method: String, route: String) -> @Sendable (_ status: String) -> Void {
        track(http: true, labels: [method, route])
    }

    private func track(http isHTTP: Bool, labels: [String]) -> @Sendable (String) -> Void {
        let started = ContinuousClock.now
        update(http: isHTTP) { $0.inFlight[labels, default: 0] += 1 }
        return { [self] code in
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            update(http: isHTTP) { s in
                s.inFlight[labels, default: 1] -= 1
                s.calls[labels + [code], default: 0] += 1
                s.latency[labels, default: Histogram()].observe(seconds)
            }
        }
    }

    private func update(http isHTTP: Bool, _ body: (inout Series) -> Void) {
        if isHTTP { http.withLock { body(&$0) } } else { native.withLock { body(&$0) } }
    }

    /// The Prometheus exposition of everything recorded, plus each replica's health.
    public func render(pools: [String: ReplicaPool]) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) { out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n" }
        func labels(_ pairs: [(String, String)]) -> String {
            "{" + pairs.map { "\($0.0)=\"\($0.1.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" }.joined(separator: ",") + "}"
        }
        func histogram(_ name: String, _ series: [[String]: Histogram], names: [String]) {
            for (key, h) in series.sorted(by: { $0.key.joined() < $1.key.joined() }) {
                let base = Array(zip(names, key))
                for (i, bound) in Self.buckets.enumerated() {
                    out += "\(name)_bucket\(labels(base + [("le", String(bound))])) \(h.counts[i])\n"
                }
                out += "\(name)_bucket\(labels(base + [("le", "+Inf")])) \(h.count)\n"
                out += "\(name)_sum\(labels(base)) \(h.sum)\n\(name)_count\(labels(base)) \(h.count)\n"
            }
        }
        let nativeSeries = native.withLock { $0 }, httpSeries = http.withLock { $0 }

        family("chorus_gateway_calls_total", "counter", "Calls the gateway relayed to a service (forwarded, pipeline steps, HTTP), by method and status code.")
        for (key, value) in nativeSeries.calls.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            out += "chorus_gateway_calls_total\(labels([("method", key[0]), ("code", key[1])])) \(value)\n"
        }
        family("chorus_gateway_call_seconds", "histogram", "Latency of native calls through the gateway, by backend method.")
        histogram("chorus_gateway_call_seconds", nativeSeries.latency, names: ["method"])
        family("chorus_gateway_calls_in_flight", "gauge", "Native calls in flight, by method.")
        for (key, value) in nativeSeries.inFlight.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            out += "chorus_gateway_calls_in_flight\(labels([("method", key[0])])) \(value)\n"
        }
        family("chorus_http_requests_total", "counter", "HTTP requests, by method, route and status.")
        for (key, value) in httpSeries.calls.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            out += "chorus_http_requests_total\(labels([("method", key[0]), ("route", key[1]), ("status", key[2])])) \(value)\n"
        }
        family("chorus_http_request_seconds", "histogram", "Latency of HTTP requests, by method and route (until the response head).")
        histogram("chorus_http_request_seconds", httpSeries.latency, names: ["method", "route"])
        family("chorus_http_requests_in_flight", "gauge", "HTTP requests in flight, by method and route.")
        for (key, value) in httpSeries.inFlight.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            out += "chorus_http_requests_in_flight\(labels([("method", key[0]), ("route", key[1])])) \(value)\n"
        }
        family("chorus_replica_healthy", "gauge", "1 when the replica passes its health checks.")
        family("chorus_replica_in_flight", "gauge", "Calls the gateway has in flight on the replica.")
        for (service, pool) in pools.sorted(by: { $0.key < $1.key }) {
            for replica in pool.replicas {
                let l = labels([("service", service), ("address", replica.address)])
                out += "chorus_replica_healthy\(l) \(replica.isHealthy ? 1 : 0)\nchorus_replica_in_flight\(l) \(replica.inFlight)\n"
            }
        }
        return out
    }
}
