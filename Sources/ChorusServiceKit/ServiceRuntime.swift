import ChorusAPI
import ChorusWire
import Foundation
import Logging
import NIOConcurrencyHelpers

/// What every service process shares: identity, loaded models, counters, the concurrency limiter.
/// The Health/Status/ListModels/Echo answers are built from it (see CommonServiceHandler).
public final class ServiceRuntime: Sendable {
    public struct Options: Sendable {
        public var service: String
        public var device: String
        public var modelsDirectory: String?
        public var maxConcurrency: Int
        public var maxQueue: Int
        /// Resident memory the process may reach; a call that would take it past is refused with
        /// RESOURCE_EXHAUSTED before it starts (nil: no budget).
        public var memoryBudgetBytes: Int?

        public init(service: String, device: String = "cpu", modelsDirectory: String? = nil,
                    maxConcurrency: Int = 2, maxQueue: Int = 64, memoryBudgetBytes: Int? = nil) {
            self.service = service
            self.device = device
            self.modelsDirectory = modelsDirectory
            self.maxConcurrency = maxConcurrency
            self.maxQueue = maxQueue
            self.memoryBudgetBytes = memoryBudgetBytes
        }
    }

    public static let version = "0.1.0"

    public let options: Options
    public let logger: Logger
    public let limiter: ConcurrencyLimiter
    private let started = Date()
    private let state = NIOLockedValueBox(MutableState())

    private struct MutableState {
        var models: [ModelInfo] = []
        var address = ""
        var draining = false
        var stats: ServerStats?
    }

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
        self.limiter = ConcurrencyLimiter(maxConcurrency: options.maxConcurrency, maxQueue: options.maxQueue)
    }

    public var service: String { options.service }

    /// Connects the counters of the server that serves this runtime.
    public func attach(server: WireServer, address: String) {
        state.withLockedValue {
            $0.stats = server.stats
            $0.address = address
        }
    }

    public func setDraining() {
        state.withLockedValue { $0.draining = true }
    }

    public var models: [ModelInfo] {
        state.withLockedValue { $0.models }
    }

    public func addModel(_ model: ModelInfo) {
        state.withLockedValue { state in
            state.models.removeAll { $0.name == model.name }
            state.models.append(model)
        }
    }

    public func removeModel(named name: String) -> Bool {
        state.withLockedValue { state in
            let before = state.models.count
            state.models.removeAll { $0.name == name }
            return state.models.count != before
        }
    }

    /// Refuses a call whose work needs about `bytes` more than the process holds now, when that would take
    /// it past its memory budget: a clear RESOURCE_EXHAUSTED for the caller rather than the kernel's
    /// OOM killer for every caller.
    public func admit(needing bytes: Int, for what: @autoclosure () -> String) throws {
        guard let budget = options.memoryBudgetBytes else { return }
        let resident = Int(clamping: ProcessMemory.residentBytes)
        let (total, overflow) = resident.addingReportingOverflow(max(0, bytes))
        guard overflow || total > budget else { return }
        throw WireStatus(.resourceExhausted, "\(what()) needs about \(max(0, bytes) >> 20) MiB; the \(service) service holds \(resident >> 20) MiB of its \(budget >> 20) MiB budget (--memory-budget-mib). Send less at once, or retry later")
    }

    /// The error for a model call when the model is not loaded.
    public func missingModel(_ what: String, hint: String) -> WireStatus {
        WireStatus(.failedPrecondition, "no \(what) model loaded in the \(service) service; \(hint)")
    }

    var servingState: ServingState {
        state.withLockedValue { $0.draining } ? .draining : .serving
    }

    public func health() -> HealthResponse {
        HealthResponse(state: servingState, service: service, version: Self.version)
    }

    public func status() async -> ServiceStatus {
        let (address, stats) = state.withLockedValue { ($0.address, $0.stats) }
        return ServiceStatus(
            service: service, address: address, device: options.device, pid: UInt32(getpid()),
            uptimeSeconds: Date().timeIntervalSince(started),
            residentBytes: ProcessMemory.residentBytes, peakResidentBytes: ProcessMemory.peakResidentBytes,
            inFlight: UInt32(stats?.inFlight ?? 0), queueDepth: UInt32(await limiter.queueDepth),
            maxConcurrency: UInt32(limiter.maxConcurrency), maxQueue: UInt32(limiter.maxQueue),
            callsTotal: stats?.callsTotal ?? 0, callsFailed: stats?.callsFailed ?? 0,
            models: models, state: servingState)
    }

    /// "host:port pid", to tell replicas apart in Echo answers.
    public var identity: String {
        "\(state.withLockedValue { $0.address }) \(getpid())"
    }
}
