import ChorusAPI
import ChorusServiceKit
import ChorusWire
import Foundation

/// The gateway's own methods: Health, Status and ListModels across all services.
struct GatewayServer: GatewayHandler {
    let gateway: Gateway

    func health(_ request: HealthRequest, context: CallContext) async throws -> HealthResponse {
        let services = gateway.pools.keys.sorted().map { name -> ServiceHealth in
            let pool = gateway.pools[name]!
            let healthy = pool.healthyCount
            let errors = pool.replicas.filter { !$0.isHealthy }.map { "\($0.address): \($0.lastError)" }
            return ServiceHealth(service: name, state: healthy > 0 ? .serving : .notServing,
                                 healthyReplicas: UInt32(healthy), replicas: UInt32(pool.replicas.count),
                                 message: errors.joined(separator: "; "))
        }
        let allServing = services.allSatisfy { $0.state == .serving }
        return HealthResponse(state: allServing ? .serving : .notServing, service: "gateway",
                              version: ServiceRuntime.version, services: services)
    }

    func status(_ request: StatusRequest, context: CallContext) async throws -> ServiceStatus {
        let replicas = gateway.pools.values.flatMap(\.replicas)
        let statuses = await withTaskGroup(of: (Int, ServiceStatus?).self) { group -> [Int: ServiceStatus] in
            for (index, replica) in replicas.enumerated() where replica.isHealthy {
                group.addTask {
                    (index, try? await HealthClient(replica.client, service: replica.service).status(timeout: .seconds(1)))
                }
            }
            var result: [Int: ServiceStatus] = [:]
            for await (index, status) in group { result[index] = status }
            return result
        }
        return ServiceStatus(
            service: "gateway", pid: UInt32(getpid()),
            residentBytes: ProcessMemory.residentBytes, peakResidentBytes: ProcessMemory.peakResidentBytes,
            inFlight: UInt32(replicas.map(\.inFlight).reduce(0, +)),
            callsTotal: replicas.map(\.callsTotal).reduce(0, +),
            models: statuses.values.flatMap(\.models), state: .serving,
            replicas: replicas.enumerated().map { index, replica in
                ReplicaStatus(service: replica.service, address: replica.address, healthy: replica.isHealthy,
                              inFlight: UInt32(replica.inFlight), callsTotal: replica.callsTotal,
                              lastError: replica.lastError, status: statuses[index])
            })
    }

    func listModels(_ request: ListModelsRequest, context: CallContext) async throws -> ListModelsResponse {
        await gateway.listModels()
    }

    /// Answered by the gateway itself: the baseline for measuring the forwarding hop.
    func echo(_ request: EchoRequest, context: CallContext) async throws -> EchoResponse {
        EchoResponse(payload: request.payload, servedBy: "gateway \(getpid())")
    }

    /// One event per step as it finishes (a failed step's event carries its status), then `done`.
    func compose(_ request: ComposeRequest, context: CallContext, responses: ResponseWriter<ComposeEvent>) async throws {
        for try await event in gateway.composeEvents(request, deadline: context.deadline) {
            try await responses.write(event)
        }
    }
}
