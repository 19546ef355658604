import Foundation
import NIOConcurrencyHelpers

/// One upstream at run time: its configuration, the requests in flight against its limit, and a circuit
/// breaker that stops sending to it after `breakerFailures` failures in a row, for `breakerCooldownSeconds`;
/// then one request is let through, and its outcome closes the circuit or opens it again.
package final class Upstream: Sendable {
    package let config: UpstreamConfig
    private struct State {
        var inFlight = 0
        var failuresInARow = 0
        var openUntil: Date?
        var probing = false
        var answered: [Int: Int] = [:]  // HTTP status (0: no answer) → count
    }
    private let state = NIOLockedValueBox(State())

    init(_ config: UpstreamConfig) { self.config = config }

    var name: String { config.name }

    /// Healthy unless the circuit is open now.
    package var isHealthy: Bool {
        state.withLockedValue { state in state.openUntil.map { $0 <= Date() } ?? true }
    }

    var inFlight: Int { state.withLockedValue { $0.inFlight } }

    /// Takes a slot, or says why not: the circuit is open, or the upstream has max_concurrent requests running.
    func admit() throws -> Slot {
        try state.withLockedValue { state in
            if let until = state.openUntil {
                let left = until.timeIntervalSinceNow
                if left > 0 || state.probing {
                    throw OpenAIError(.serviceUnavailable, "upstream '\(config.name)' is unhealthy: \(state.failuresInARow) failures in a row; "
                                      + String(format: "the next try in %.0f s", max(1, left.rounded(.up))), type: "service_unavailable", code: "upstream_unavailable")
                }
                state.probing = true  // half-open: this request decides
            }
            guard state.inFlight < config.maxConcurrent else {
                throw OpenAIError(.tooManyRequests, "upstream '\(config.name)' has \(state.inFlight) requests in flight, its max_concurrent", type: "rate_limit_error")
            }
            state.inFlight += 1
            return Slot(upstream: self)
        }
    }

    /// A request in flight: finished once, with the HTTP status the upstream answered (nil: no answer).
    final class Slot: Sendable {
        let upstream: Upstream
        private let done = NIOLockedValueBox(false)

        init(upstream: Upstream) { self.upstream = upstream }

        func finish(status: Int?) {
            guard done.withLockedValue({ let was = $0; $0 = true; return !was }) else { return }
            upstream.record(status: status)
        }

        deinit { finish(status: 499) }  // abandoned (the client went away): neither success nor failure of the upstream's
    }

    private func record(status: Int?) {
        state.withLockedValue { state in
            state.inFlight -= 1
            state.answered[status ?? 0, default: 0] += 1
            if status == 499 { state.probing = false; return }
            if let status, status < 500 {
                state.failuresInARow = 0
                state.openUntil = nil
            } else {
                state.failuresInARow += 1
                if state.failuresInARow >= config.breakerFailures {
                    state.openUntil = Date().addingTimeInterval(config.breakerCooldownSeconds)
                }
            }
            state.probing = false
        }
    }

    /// Prometheus lines for this upstream.
    func metrics() -> String {
        let snapshot = state.withLockedValue { $0 }
        let label = "upstream=\"\(config.name)\""
        var lines = ["chorus_upstream_healthy{\(label)} \(isHealthy ? 1 : 0)",
                     "chorus_upstream_in_flight{\(label)} \(snapshot.inFlight)",
                     "chorus_upstream_failures_in_a_row{\(label)} \(snapshot.failuresInARow)"]
        for (status, count) in snapshot.answered.sorted(by: { $0.key < $1.key }) {
            lines.append("chorus_upstream_requests_total{\(label),status=\"\(status == 0 ? "none" : "\(status)")\"} \(count)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
