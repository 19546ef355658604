import ChorusWire
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore

/// API keys from a file (`chorus gateway --api-keys FILE`), each with a name (what logs and metrics show; the key
/// itself never), the models it may use, and how many requests a minute and at once it may make:
///
///     {"keys": [{"name": "team-a", "key_env": "TEAM_A_KEY", "models": ["llava-1.5", "internvl3"],
///                "requests_per_minute": 600, "max_concurrent": 8},
///               {"name": "ops", "key_env": "OPS_KEY", "models": ["*"]}]}
///
/// `key` may stand in the file instead of `key_env`. Past a limit the answer is 429 in OpenAI's shape with
/// Retry-After; a model the key may not use is 403.
package final class KeyPolicies: Sendable {
    package struct Policy: Sendable {
        package var name: String
        var key: [UInt8]
        package var models: Set<String>
        package var requestsPerMinute: Int?
        package var maxConcurrent: Int?

        func allows(_ model: String) -> Bool { allowsAll || models.contains(model) }
        var allowsAll: Bool { models.contains("*") }
        /// "models a, b" for messages.
        var modelList: String { "model\(models.count == 1 ? "" : "s") " + models.sorted().joined(separator: ", ") }
    }

    private struct Usage {
        var inFlight = 0
        var recent: [Date] = []  // request times within the last minute, oldest first
        var answered: [Int: Int] = [:]
    }

    package let policies: [Policy]
    private let usage: NIOLockedValueBox<[String: Usage]>

    package init(_ policies: [Policy]) {
        self.policies = policies
        usage = NIOLockedValueBox(Dictionary(uniqueKeysWithValues: policies.map { ($0.name, Usage()) }))
    }

    package static func load(json: Data, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> KeyPolicies {
        guard let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any], let list = root["keys"] as? [[String: Any]], !list.isEmpty else {
            throw UpstreamConfig.ConfigError("the keys file must be a JSON object with a non-empty list \"keys\"")
        }
        var names = Set<String>(), keys = Set<String>()
        return KeyPolicies(try list.enumerated().map { i, entry in
            let at = "keys[\(i)]"
            guard let name = entry["name"] as? String, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw UpstreamConfig.ConfigError("\(at).name must be a name of letters, digits, - _ .")
            }
            guard names.insert(name).inserted else { throw UpstreamConfig.ConfigError("two keys are named '\(name)'") }
            let key: String
            if let variable = entry["key_env"] as? String {
                guard let value = environment[variable], !value.isEmpty else { throw UpstreamConfig.ConfigError("\(at).key_env names \(variable), which is not set") }
                key = value
            } else if let value = entry["key"] as? String, !value.isEmpty {
                key = value
            } else {
                throw UpstreamConfig.ConfigError("\(at) needs key_env (an environment variable) or key")
            }
            guard keys.insert(key).inserted else { throw UpstreamConfig.ConfigError("\(at) repeats another entry's key") }
            guard let models = entry["models"] as? [String], !models.isEmpty else {
                throw UpstreamConfig.ConfigError("\(at).models must list the models it may use (\"*\": all)")
            }
            func limit(_ field: String) throws -> Int? {
                guard let value = entry[field] else { return nil }
                guard let number = value as? Int, (1...1_000_000).contains(number) else {
                    throw UpstreamConfig.ConfigError("\(at).\(field) must be a whole number in 1 ... 1000000")
                }
                return number
            }
            return Policy(name: name, key: Array(key.utf8), models: Set(models), requestsPerMinute: try limit("requests_per_minute"),
                          maxConcurrent: try limit("max_concurrent"))
        })
    }

    /// The policy whose key the header carries; every key is compared, each in constant time.
    func policy(forHeader header: String) -> Policy? {
        let given = header.hasPrefix("Bearer ") ? Array(header.utf8.dropFirst(7)) : []
        guard !given.isEmpty else { return nil }
        var found: Policy?
        for policy in policies where constantTimeEqual(given, policy.key) { found = policy }
        return found
    }

    /// Counts a request against its key's limits, or says which one it is past and when to come back.
    func admit(_ policy: Policy, now: Date = Date()) throws {
        try usage.withLockedValue { all in
            var mine = all[policy.name] ?? Usage()
            mine.recent.removeAll { now.timeIntervalSince($0) >= 60 }
            if let rpm = policy.requestsPerMinute, mine.recent.count >= rpm {
                let wait = Int((60 - now.timeIntervalSince(mine.recent[0])).rounded(.up))  // checked: 1 ... 60 s
                all[policy.name] = mine
                throw KeyLimit(retryAfter: max(1, wait), message: "key '\(policy.name)' made \(rpm) requests in the last minute, its requests_per_minute; retry in \(max(1, wait)) s")
            }
            if let most = policy.maxConcurrent, mine.inFlight >= most {
                all[policy.name] = mine
                throw KeyLimit(retryAfter: 1, message: "key '\(policy.name)' has \(mine.inFlight) requests in flight, its max_concurrent")
            }
            mine.recent.append(now)
            mine.inFlight += 1
            all[policy.name] = mine
        }
    }

    func finish(_ policy: Policy, status: Int) {
        usage.withLockedValue { all in
            all[policy.name]?.inFlight -= 1
            all[policy.name]?.answered[status, default: 0] += 1
        }
    }

    /// A request refused before it was admitted.
    func count(_ policy: Policy, status: Int) {
        usage.withLockedValue { all in all[policy.name]?.answered[status, default: 0] += 1 }
    }

    /// Finishes a request once: when its body has been written, or when the response is dropped unwritten.
    final class Finisher: Sendable {
        let policies: KeyPolicies, policy: Policy, status: Int
        private let done = NIOLockedValueBox(false)

        init(_ policies: KeyPolicies, _ policy: Policy, status: Int) {
            (self.policies, self.policy, self.status) = (policies, policy, status)
        }

        func finish() {
            guard done.withLockedValue({ let was = $0; $0 = true; return !was }) else { return }
            policies.finish(policy, status: status)
        }

        deinit { finish() }
    }

    struct KeyLimit: Error {
        let retryAfter: Int
        let message: String
    }

    /// Prometheus lines per key name.
    func metrics() -> String {
        let snapshot = usage.withLockedValue { $0 }
        var lines: [String] = []
        for (name, usage) in snapshot.sorted(by: { $0.key < $1.key }) {
            lines.append("chorus_key_in_flight{key=\"\(name)\"} \(usage.inFlight)")
            for (status, count) in usage.answered.sorted(by: { $0.key < $1.key }) {
                lines.append("chorus_key_requests_total{key=\"\(name)\",status=\"\(status)\"} \(count)")
            }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }
}

/// The keys file's checks on every request but the probes (`OpenProbes`): a known key, a model it may use (for the routes that
/// name one), and its limits.
struct KeyPolicyCheck<Context: RequestContext>: RouterMiddleware {
    /// Routes whose requests run models they need not name (a pipeline's steps and recipes, a prompt preview's
    /// default model): only a key that may use every model may call them.
    static var choosesItsOwnModels: Set<String> { ["/v1/pipelines", "/v1/prompts/preview"] }

    let policies: KeyPolicies
    let bodyLimit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if OpenProbes.isOpen(request.uri.path) { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        guard let policy = policies.policy(forHeader: header) else {
            throw OpenAIError(.unauthorized, header.isEmpty ? "missing API key: send Authorization: Bearer <key>" : "incorrect API key",
                              type: "invalid_request_error", code: "invalid_api_key")
        }
        var request = request
        if request.method == .post, let multipart = UpstreamRouting<Context>.routes[request.uri.path] {
            let model: String?
            if multipart {
                model = try await MultipartStream.peekModel(&request, limit: bodyLimit)  // the file streams on to the route
            } else {
                model = try await request.peekJSON(limit: bodyLimit)?["model"] as? String
            }
            if let model, !policy.allows(model) {
                policies.count(policy, status: 403)
                throw OpenAIError(.forbidden, "key '\(policy.name)' may not use model '\(model)'", type: "permission_error", code: "model_not_allowed")
            }
            // Without a model the service would pick its default, which the key may not name.
            if model == nil, !policy.allowsAll {
                policies.count(policy, status: 403)
                throw OpenAIError(.forbidden, "key '\(policy.name)' may use only \(policy.modelList): name one in 'model'",
                                  type: "permission_error", code: "model_not_allowed")
            }
        } else if request.method == .post, Self.choosesItsOwnModels.contains(request.uri.path), !policy.allowsAll {
            policies.count(policy, status: 403)
            throw OpenAIError(.forbidden, "key '\(policy.name)' may use only \(policy.modelList); \(request.uri.path) runs models a request "
                              + "does not name, so it needs a key whose models are \"*\"", type: "permission_error", code: "model_not_allowed")
        }
        do {
            try policies.admit(policy)
        } catch let limit as KeyPolicies.KeyLimit {
            policies.count(policy, status: 429)
            var response = Response.json(OpenAIError(.tooManyRequests, limit.message, type: "rate_limit_error", code: "rate_limit_exceeded").json,
                                         status: .tooManyRequests)
            response.headers[.retryAfter] = "\(limit.retryAfter)"
            return response
        }
        do {
            var response = try await next(request, context)
            // In flight until the body has been written: a stream counts for as long as it runs.
            let finisher = KeyPolicies.Finisher(policies, policy, status: Int(response.status.code))  // checked: an HTTP status, three digits
            let body = response.body
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                defer { finisher.finish() }
                try await body.write(writer)
            }
            return response
        } catch {
            policies.finish(policy, status: Int(OpenAIError.from(error).status.code))  // checked: an HTTP status, three digits
            throw error
        }
    }
}
