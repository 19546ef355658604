import ChorusAPI
import ChorusWire
import NIOCore

extension ServiceRouter {
    /// `open` for a unary call relayed on the event loop its frame arrived on (LoopRelay): the same pool,
    /// admission, choice (healthy, least in flight), failover past a replica that refuses before starting,
    /// ejection and metrics, with the replica's answer written back from the loop, no task in between.
    /// Returns false, having done nothing, when the call is to be refused (the async way says why) or the best
    /// replica has no connection on this loop yet (the async way connects it, for the calls after).
    func relayOnLoop(_ call: LoopCall, options: CallOptions) -> Bool {
        guard let pool = pool(for: call.method), pool.admit(limit: maxInFlightPerService) else { return false }
        let relay = RelayedCall(router: self, pool: pool, call: call, options: options)
        if relay.start() {
            relayedOnLoop.add(1, ordering: .relaxed)
            return true
        }
        pool.release()
        return false
    }
}

/// One unary call relayed on the event loop, from its first replica to its answer. Lives on that loop.
private final class RelayedCall {
    let router: ServiceRouter
    let pool: ReplicaPool
    let call: LoopCall
    let options: CallOptions
    let candidates: [Replica]
    /// The candidate the call is on now, its call there, and whether an answer has been passed on.
    var index = 0
    var upstream: LoopUpstream?
    var answered = false
    /// Counts the call in the metrics; made once a replica has the call (or it fails), so a call declined
    /// to the async way is counted there alone.
    var finished: (@Sendable (String) -> Void)?
    var cancelled: WireStatus?
    var ended = false

    init(router: ServiceRouter, pool: ReplicaPool, call: LoopCall, options: CallOptions) {
        self.router = router
        self.pool = pool
        self.call = call
        self.options = options
        candidates = pool.candidates()
    }

    /// Opens the call on the best replica; false when it has no connection on this loop.
    func start() -> Bool {
        guard let best = candidates.first else { return false }
        do {
            guard try open(on: best) else { return false }
        } catch {
            let status = WireStatus.from(error)
            guard ServiceRouter.isTheRequestsFault(status) else { return false }  // the async way ejects and retries
            startMetrics()
            end(status, payload: nil, replica: nil)
            return true
        }
        startMetrics()
        call.onCancel { [self] reason in
            guard !ended else { return }
            cancelled = reason
            upstream?.cancel()
        }
        return true
    }

    private func startMetrics() {
        let method = call.method
        finished = router.metrics.nativeCallStarted(method: ChorusMethods.all[method] != nil ? method : "unknown")
    }

    /// Opens the call on `replica`, counted in its calls in flight while it lasts; false (and not counted) when
    /// the replica has no connection on this loop. A replica's earlier call has always ended before the next
    /// opens, so each handler hears only its own call.
    private func open(on replica: Replica) throws -> Bool {
        replica.begin()
        do {
            upstream = try replica.client.openOnLoop(call.method, options: options, first: call.request, endOfStream: true) { [self] answer in
                heard(answer, from: replica)
            }
        } catch {
            replica.end()
            throw error
        }
        if upstream == nil { replica.end() }
        return upstream != nil
    }

    private func heard(_ answer: LoopAnswer, from replica: Replica) {
        switch answer {
        case .message(let payload):
            answered = true
            call.send(payload)
        case .end(let payload, let status):
            if status.code != .ok, cancelled == nil, !answered, ServiceRouter.refusedBeforeStarting(status),
               index + 1 < candidates.count {
                replica.end()
                router.logger.info("\(pool.service) replica \(replica.address) refused \(call.method) (\(status.code)); trying the next")
                next(after: status)
            } else {
                end(cancelled ?? status, payload: payload, replica: replica)
            }
        }
    }

    /// The next candidates in turn, after `refusal`: those with a connection on this loop (the async way would
    /// connect the others; a call here stays on the loop). None left: the caller hears the refusal.
    private func next(after refusal: WireStatus) {
        var lastError = refusal
        while index + 1 < candidates.count {
            index += 1
            let replica = candidates[index]
            do {
                if try open(on: replica) { return }
            } catch {
                let status = WireStatus.from(error)
                if ServiceRouter.isTheRequestsFault(status) { return end(status, payload: nil, replica: nil) }
                router.eject(replica, of: pool, status)
                lastError = status
            }
        }
        end(lastError, payload: nil, replica: nil)
    }

    private func end(_ status: WireStatus, payload: ByteBuffer?, replica: Replica?) {
        guard !ended else { return }
        ended = true
        replica?.end()
        pool.release()
        finished?("\(status.code)")
        call.finish(status, payload: payload)
    }
}
