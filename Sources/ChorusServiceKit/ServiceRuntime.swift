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
    /// The git commit this binary was built from (Plugins/GitCommit), "unknown" outside a checkout.
    public static let commit = buildCommit

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

    /// Whether the service takes calls now, and why not: start-up (loading the models) not finished, draining
    /// after SIGTERM, or every compute slot busy with the queue full (a new call would be refused).
    public func readiness() async -> (ready: Bool, reason: String) {
        let (address, draining) = state.withLockedValue { ($0.address, $0.draining) }
        if address.isEmpty { return (false, "loading models") }
        if draining { return (false, "draining") }
        let (running, waiting) = (await limiter.inFlight, await limiter.queueDepth)
        if running >= limiter.maxConcurrency && waiting >= limiter.maxQueue {
            return (false, "busy: \(running) calls running and \(waiting) waiting (--max-concurrency \(limiter.maxConcurrency), --max-queue \(limiter.maxQueue))")
        }
        return (true, "")
    }

    /// The runtime's figures in Prometheus' text format (the health port's /metrics): what an autoscaler reads
    /// (queue depth, calls running), what an operator watches (calls and failures, compute time, memory, models).
    public func prometheus() async -> String {
        let status = await status()
        let compute = await limiter.computeSeconds
        let (ready, _) = await readiness()
        let label = "service=\"\(service)\""
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name){\(sample.labels)} \(sample.value)\n" }
        }
        metric("chorus_service_info", "gauge", "The service, its version and device.",
               [("\(label),version=\"\(Self.version)\",device=\"\(Self.escaped(options.device))\"", "1")])
        metric("chorus_ready", "gauge", "1 when the service takes calls (what /readyz answers).", [(label, ready ? "1" : "0")])
        metric("chorus_queue_depth", "gauge", "Model calls waiting for a compute slot.", [(label, "\(status.queueDepth)")])
        metric("chorus_compute_in_flight", "gauge", "Model calls holding a compute slot.", [(label, "\(await limiter.inFlight)")])
        metric("chorus_calls_in_flight", "gauge", "Calls open on the wire port (any method).", [(label, "\(status.inFlight)")])
        metric("chorus_max_concurrency", "gauge", "Compute slots (--max-concurrency).", [(label, "\(status.maxConcurrency)")])
        metric("chorus_max_queue", "gauge", "Calls that may wait (--max-queue).", [(label, "\(status.maxQueue)")])
        metric("chorus_calls_total", "counter", "Calls served on the wire port, by outcome.",
               [("\(label),outcome=\"ok\"", "\(status.callsTotal - min(status.callsTotal, status.callsFailed))"),
                ("\(label),outcome=\"failed\"", "\(status.callsFailed)")])
        metric("chorus_compute_refused_total", "counter", "Model calls refused because the queue was full.", [(label, "\(compute.refused)")])
        out += "# HELP chorus_compute_seconds Time model calls held a compute slot.\n# TYPE chorus_compute_seconds histogram\n"
        var cumulative = 0
        for (bound, count) in zip(ConcurrencyLimiter.ComputeSeconds.bounds, compute.counts) {
            cumulative += count
            out += "chorus_compute_seconds_bucket{\(label),le=\"\(bound)\"} \(cumulative)\n"
        }
        out += "chorus_compute_seconds_bucket{\(label),le=\"+Inf\"} \(compute.count)\n"
        out += "chorus_compute_seconds_sum{\(label)} \(compute.sum)\nchorus_compute_seconds_count{\(label)} \(compute.count)\n"
        metric("chorus_resident_memory_bytes", "gauge", "Resident memory of the process.", [(label, "\(status.residentBytes)")])
        metric("chorus_peak_resident_memory_bytes", "gauge", "Peak resident memory of the process.", [(label, "\(status.peakResidentBytes)")])
        metric("chorus_uptime_seconds", "gauge", "Seconds since the process started.", [(label, String(format: "%.3f", status.uptimeSeconds))])
        metric("chorus_model_loaded", "gauge", "1 for each model loaded, by name and kind.",
               status.models.map { ("\(label),model=\"\(Self.escaped($0.name))\",kind=\"\(Self.escaped($0.kind))\"", "1") })
        return out
    }

    /// A label value as Prometheus' text format writes it.
    static func escaped(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// "host:port pid", to tell replicas apart in Echo answers.
    public var identity: String {
        "\(state.withLockedValue { $0.address }) \(getpid())"
    }
}
