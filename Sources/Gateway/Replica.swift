import ChorusWire
import NIOConcurrencyHelpers

/// One backend process of a service, as the gateway sees it.
public final class Replica: Sendable {
    public let service: String
    public let client: WireClient
    private let state = NIOLockedValueBox(State())

    struct State {
        // Optimistic until the first health check: a call may reach a replica before it has been probed.
        var healthy = true
        var inFlight = 0
        var callsTotal: UInt64 = 0
        var lastError = ""
    }

    /// `healthy: false` for a replica discovered while running: it takes calls once a health check passes.
    init(service: String, client: WireClient, healthy: Bool = true) {
        self.service = service
        self.client = client
        state.withLockedValue { $0.healthy = healthy }
    }

    public var address: String { client.address }
    public var isHealthy: Bool { state.withLockedValue { $0.healthy } }
    public var inFlight: Int { state.withLockedValue { $0.inFlight } }
    public var callsTotal: UInt64 { state.withLockedValue { $0.callsTotal } }
    public var lastError: String { state.withLockedValue { $0.lastError } }

    /// Returns true when the health changed, so the caller can log ejections and re-admissions once.
    @discardableResult
    func setHealthy(_ healthy: Bool, error: String = "") -> Bool {
        state.withLockedValue { state in
            if !error.isEmpty { state.lastError = error }
            defer { state.healthy = healthy }
            return state.healthy != healthy
        }
    }

    func begin() {
        state.withLockedValue {
            $0.inFlight += 1
            $0.callsTotal += 1
        }
    }

    func end() {
        state.withLockedValue { $0.inFlight -= 1 }
    }
}

/// The replicas of one service. Picks the healthy replica with the fewest calls in flight,
/// rotating among equals so idle replicas share the load.
public final class ReplicaPool: Sendable {
    public let service: String
    /// The members now: fixed at start, or changed by discovery (ReplicaSource) while the gateway runs.
    private let members: NIOLockedValueBox<[Replica]>
    private let rotation = NIOLockedValueBox(0)
    /// Calls the gateway is relaying to this service now, against its limit.
    private let admitted = NIOLockedValueBox(0)

    init(service: String, replicas: [Replica]) {
        self.service = service
        members = NIOLockedValueBox(replicas)
    }

    public var replicas: [Replica] { members.withLockedValue { $0 } }

    /// Makes the members the replicas at `addresses`: an address not yet a member joins (made by `make`), a member
    /// whose address is gone leaves (calls already on it go on; no new ones reach it). Returns who joined and left.
    func update(to addresses: [String], make: (String) throws -> Replica) rethrows -> (joined: [Replica], left: [Replica]) {
        let current = replicas
        let wanted = Set(addresses)
        let left = current.filter { !wanted.contains($0.address) }
        let joined = try addresses.filter { address in !current.contains { $0.address == address } }.map(make)
        guard !left.isEmpty || !joined.isEmpty else { return ([], []) }
        members.withLockedValue { members in
            members.removeAll { member in left.contains { $0 === member } }
            members += joined
        }
        return (joined, left)
    }

    /// Takes one of the `limit` places for calls in flight to this service, or says there is none.
    func admit(limit: Int) -> Bool {
        admitted.withLockedValue { count in
            guard count < limit else { return false }
            count += 1
            return true
        }
    }

    func release() {
        admitted.withLockedValue { $0 -= 1 }
    }

    public var admittedCalls: Int { admitted.withLockedValue { $0 } }

    /// Healthy replicas, best first.
    func candidates() -> [Replica] {
        let start = rotation.withLockedValue { value -> Int in
            value &+= 1
            return value
        }
        let replicas = replicas
        let count = replicas.count
        guard count > 1 else { return replicas.filter(\.isHealthy) }  // one replica (the usual deployment): no order to find
        let rotated = (0..<count).map { replicas[(start + $0) % count] }
        let healthy = rotated.filter { $0.isHealthy }
        // A stable sort keeps the rotation order among replicas with equal load.
        return healthy.enumerated().sorted { ($0.element.inFlight, $0.offset) < ($1.element.inFlight, $1.offset) }.map(\.element)
    }

    var healthyCount: Int { replicas.filter(\.isHealthy).count }
}
