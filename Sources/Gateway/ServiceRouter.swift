import ChorusAPI
import ChorusWire
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The one place a call to a service picks its replica. Calls forwarded from the gateway's wire port,
/// pipeline steps and the HTTP front (in-process) all open their calls here, so they share the same
/// selection (least in flight, healthy only), ejection, failover and per-service limit.
public final class ServiceRouter: WireChannel {
    /// Service name ("vision", "diffusion", "speech") → its replicas.
    public let pools: [String: ReplicaPool]
    /// Calls relayed to one service at once; past it a call is refused at once with RESOURCE_EXHAUSTED.
    public let maxInFlightPerService: Int
    /// Every call opened here is counted once, by method and final status, whichever path it came by.
    let metrics: GatewayMetrics
    private let prefixes: [(prefix: String, pool: ReplicaPool)]
    let logger: Logger
    /// Calls relayed on their event loop (relayOnLoop) rather than by a task.
    let relayedOnLoop = Atomic<Int>(0)

    public init(pools: [String: ReplicaPool], maxInFlightPerService: Int, metrics: GatewayMetrics, logger: Logger) {
        self.pools = pools
        self.maxInFlightPerService = maxInFlightPerService
        self.metrics = metrics
        self.logger = logger
        prefixes = pools.compactMap { name, pool in
            Gateway.serviceNames[name].map { ("/\($0)/", pool) }
        }
    }

    func pool(for method: String) -> ReplicaPool? {
        prefixes.first { method.hasPrefix($0.prefix) }?.pool
    }

    /// Opens `method` on a replica of its service. A replica that cannot be reached is ejected and the
    /// next one tried; when the whole request travels in the OPEN frame (`endOfStream`), a replica that
    /// refuses before starting (UNAVAILABLE: stopping or draining; RESOURCE_EXHAUSTED: its queue is full)
    /// is passed over too. The replica's and the service's places are held until the call's answers end.
    public func open(_ method: String, options: CallOptions, first: ByteBuffer?, endOfStream: Bool) async throws -> ClientCall {
        // A method name is client text: only the ones Chorus knows become series of their own.
        let finished = metrics.nativeCallStarted(method: ChorusMethods.all[method] != nil ? method : "unknown")
        do {
            return try await route(method, options: options, first: first, endOfStream: endOfStream, finished: finished)
        } catch {
            finished("\(WireStatus.from(error).code)")
            throw error
        }
    }

    private func route(_ method: String, options: CallOptions, first: ByteBuffer?, endOfStream: Bool,
                       finished: @escaping @Sendable (String) -> Void) async throws -> ClientCall {
        guard let pool = pool(for: method) else {
            if let known = Gateway.serviceNames.first(where: { method.hasPrefix("/\($0.value)/") })?.key {
                throw WireStatus(.unavailable, "the gateway has no \(known) replicas configured (start it with --\(known) host:port)")
            }
            throw WireStatus(.unimplemented, "unknown method \(method)")
        }
        guard pool.admit(limit: maxInFlightPerService) else {
            throw WireStatus(.resourceExhausted, "the gateway is relaying \(maxInFlightPerService) calls to \(pool.service), its limit (--max-in-flight-per-service); retry later")
        }
        var admitted = true
        defer { if admitted { pool.release() } }

        var lastError = "no replica is healthy"
        var refusal: WireStatus?
        let candidates = pool.candidates()
        for (index, replica) in candidates.enumerated() {
            // Counted before the first await, so calls arriving together see each other and spread out.
            replica.begin()
            let upstream: ClientCall
            do {
                upstream = try await replica.client.open(method, options: options, first: first, endOfStream: endOfStream)
            } catch {
                replica.end()
                let status = WireStatus.from(error)
                if Self.isTheRequestsFault(status) { throw status }
                lastError = status.message
                eject(replica, of: pool, status)
                continue
            }
            var answers = upstream.responses.makeAsyncIterator()
            var firstAnswer: ResponsePart?
            if endOfStream {
                do {
                    firstAnswer = try await withTaskCancellationHandler {
                        try await answers.next()
                    } onCancel: {
                        upstream.cancel()
                    }
                } catch let status as WireStatus where Self.refusedBeforeStarting(status) && index + 1 < candidates.count {
                    replica.end()
                    refusal = status
                    logger.info("\(pool.service) replica \(replica.address) refused \(method) (\(status.code)); trying the next")
                    continue
                } catch {
                    replica.end()
                    throw error
                }
            }
            admitted = false
            let ended = EndOnce { code in
                replica.end()
                pool.release()
                finished(code)
            }
            return Self.relayed(upstream, answers: answers, first: firstAnswer, ended: ended)
        }
        throw refusal ?? Self.noReplica(pool, lastError: lastError)
    }

    static func noReplica(_ pool: ReplicaPool, lastError: String) -> WireStatus {
        WireStatus(.unavailable, "no healthy \(pool.service) replica (\(pool.replicas.count) configured: \(pool.replicas.map(\.address).joined(separator: ", ")); last error: \(lastError))")
    }

    /// A replica that answers this first, before any answer, has not started the call: another may take it.
    static func refusedBeforeStarting(_ status: WireStatus) -> Bool {
        status.code == .unavailable || status.code == .resourceExhausted
    }

    /// A call that could not be opened for the request's own fault (out of time, a frame over the limit, a bad
    /// argument) says nothing of the replica: ejecting it would let one oversized request take a healthy
    /// replica out of service.
    static func isTheRequestsFault(_ status: WireStatus) -> Bool {
        [.deadlineExceeded, .resourceExhausted, .invalidArgument].contains(status.code)
    }

    /// Takes a replica that could not be reached out of the choice until a health check passes.
    func eject(_ replica: Replica, of pool: ReplicaPool, _ status: WireStatus) {
        if replica.setHealthy(false, error: status.message) {
            logger.warning("\(pool.service) replica \(replica.address) ejected: \(status.message)")
        }
    }

    /// The upstream call as the caller sees it: the answer already read comes first, and the places
    /// are given back when the answers end or the call is dropped, whichever comes first.
    private static func relayed(_ upstream: ClientCall, answers: CallResponses.AsyncIterator,
                                first: ResponsePart?, ended: EndOnce) -> ClientCall {
        let reader = AnswerReader(answers, first: first)
        let responses = AsyncThrowingStream<ResponsePart, Error>(unfolding: {
            do {
                guard let part = try await reader.next() else {
                    ended.run("\(StatusCode.ok)")
                    return nil
                }
                if part.isFinal { ended.run("\(StatusCode.ok)") }
                return part
            } catch {
                ended.run("\(WireStatus.from(error).code)")
                throw error
            }
        })
        return ClientCall(responses: CallResponses(responses),
                          send: { try await upstream.send($0, endOfStream: $1) },
                          halfClose: { try await upstream.halfClose() },
                          cancel: { upstream.cancel() })
    }
}

/// Runs its action once with the call's final status: when told to, or — as CANCELLED, the caller
/// having dropped the call — when released without having been told.
final class EndOnce: Sendable {
    private let action: NIOLockedValueBox<(@Sendable (String) -> Void)?>

    init(_ action: @escaping @Sendable (String) -> Void) {
        self.action = NIOLockedValueBox(action)
    }

    func run(_ code: String) {
        let action = self.action.withLockedValue { action -> (@Sendable (String) -> Void)? in
            defer { action = nil }
            return action
        }
        action?(code)
    }

    deinit {
        run("\(StatusCode.cancelled)")
    }
}

/// The iterator of an upstream call's answers, read by one consumer at a time (the stream's unfolding
/// closure is called serially), with an answer that was read ahead.
private final class AnswerReader: @unchecked Sendable {
    private var answers: CallResponses.AsyncIterator
    private var first: ResponsePart?

    init(_ answers: CallResponses.AsyncIterator, first: ResponsePart?) {
        self.answers = answers
        self.first = first
    }

    func next() async throws -> ResponsePart? {
        if let first {
            self.first = nil
            return first
        }
        return try await answers.next()
    }
}
