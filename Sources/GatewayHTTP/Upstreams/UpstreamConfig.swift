import Foundation

/// OpenAI-compatible servers the gateway fronts beside its own services (vLLM, llama.cpp's server, OpenAI,
/// another Chorus), from a JSON file (`chorus gateway --upstreams FILE`, or `"upstreams"` in `chorus up`'s
/// config):
///
///     {"upstreams": [{"name": "big-gpu", "base_url": "http://10.0.0.7:8000/v1", "api_key_env": "BIG_GPU_KEY",
///                     "timeout_seconds": 120, "max_concurrent": 64,
///                     "models": {"internvl3": {"model": "OpenGVLab/InternVL3-78B", "capabilities": ["chat", "vision"]}}}]}
///
/// A request whose `model` is an alias goes to that upstream with the upstream's model name. The key is read
/// from the environment variable at start and never logged or listed.
package struct UpstreamConfig: Sendable, Equatable {
    package struct Model: Sendable, Equatable {
        package var alias: String
        package var model: String
        package var capabilities: Set<Capability>

        package init(alias: String, model: String, capabilities: Set<Capability>) {
            (self.alias, self.model, self.capabilities) = (alias, model, capabilities)
        }
    }

    /// What a model may be asked for: each names the `/v1` routes it opens.
    package enum Capability: String, Sendable, CaseIterable {
        case chat, vision, completions, embeddings, images, audio

        /// The routes (below `/v1`) a capability opens.
        var routes: [String] {
            switch self {
            case .chat, .vision: return ["/chat/completions"]
            case .completions: return ["/completions"]
            case .embeddings: return ["/embeddings"]
            case .images: return ["/images/generations", "/images/edits"]
            case .audio: return ["/audio/transcriptions", "/audio/translations", "/audio/speech"]
            }
        }
    }

    package var name: String
    /// Up to and including the version path: "http://host:8000/v1".
    package var baseURL: String
    package var apiKey: String?
    package var timeoutSeconds: Double
    package var maxConcurrent: Int
    /// Consecutive failures (connection errors, 5xx, timeouts) that open the circuit, and how long it stays open.
    package var breakerFailures: Int
    package var breakerCooldownSeconds: Double
    package var models: [Model]
    /// The header that carries the gateway's request id to the upstream, for its logs (nil: none is sent).
    /// llama-cpp-python's server refuses an `X-Request-Id` that is not a UUID (400, empty body): "" turns it off.
    package var requestIDHeader: String? = "X-Request-Id"

    package init(name: String, baseURL: String, apiKey: String?, timeoutSeconds: Double, maxConcurrent: Int,
                 breakerFailures: Int, breakerCooldownSeconds: Double, models: [Model]) {
        (self.name, self.baseURL, self.apiKey, self.timeoutSeconds) = (name, baseURL, apiKey, timeoutSeconds)
        (self.maxConcurrent, self.breakerFailures, self.breakerCooldownSeconds, self.models) = (maxConcurrent, breakerFailures, breakerCooldownSeconds, models)
    }

    /// The file's upstreams, checked: names and aliases unique, URLs http(s), numbers in range.
    package static func load(json: Data, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UpstreamConfig] {
        guard let root = try? JSONSerialization.jsonObject(with: json) as? [String: Any], let list = root["upstreams"] as? [[String: Any]] else {
            throw ConfigError("the upstreams file must be a JSON object with a list \"upstreams\"")
        }
        var names = Set<String>(), aliases = Set<String>()
        return try list.enumerated().map { i, entry in
            let at = "upstreams[\(i)]"
            guard let name = entry["name"] as? String, !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
                throw ConfigError("\(at).name must be a name of letters, digits, - _ .")
            }
            guard names.insert(name).inserted else { throw ConfigError("two upstreams are named '\(name)'") }
            guard var base = entry["base_url"] as? String, let url = URL(string: base), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ConfigError("\(at).base_url must be an http(s) URL such as http://host:8000/v1")
            }
            while base.hasSuffix("/") { base.removeLast() }
            var key: String?
            if let variable = entry["api_key_env"] as? String {
                guard let value = environment[variable], !value.isEmpty else {
                    throw ConfigError("\(at).api_key_env names \(variable), which is not set")
                }
                key = value
            }
            func number(_ field: String, _ fallback: Double, _ range: ClosedRange<Double>) throws -> Double {
                guard let value = entry[field] else { return fallback }
                guard let number = value as? Double, range.contains(number) else {
                    throw ConfigError("\(at).\(field) must be a number in \(range.lowerBound) ... \(range.upperBound)")
                }
                return number
            }
            guard let modelMap = entry["models"] as? [String: Any], !modelMap.isEmpty else {
                throw ConfigError("\(at).models must map at least one alias to {\"model\": ..., \"capabilities\": [...]}")
            }
            let models = try modelMap.keys.sorted().map { alias -> Model in
                guard aliases.insert(alias).inserted else { throw ConfigError("the alias '\(alias)' is given twice") }
                let spec = modelMap[alias] as? [String: Any] ?? [:]
                let model = spec["model"] as? String ?? alias
                let named = spec["capabilities"] as? [String] ?? ["chat"]
                let capabilities = try Set(named.map { text -> Capability in
                    guard let capability = Capability(rawValue: text) else {
                        throw ConfigError("\(at).models.\(alias): capability '\(text)'; capabilities are \(Capability.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return capability
                })
                return Model(alias: alias, model: model, capabilities: capabilities)
            }
            var requestIDHeader: String? = "X-Request-Id"
            if let header = entry["request_id_header"] {
                guard let text = header as? String, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                    throw ConfigError("\(at).request_id_header must be a header name (letters, digits, -), or \"\" to send none")
                }
                requestIDHeader = text.isEmpty ? nil : text
            }
            var config = UpstreamConfig(name: name, baseURL: base, apiKey: key, timeoutSeconds: try number("timeout_seconds", 120, 0.1...3600),
                                  maxConcurrent: Int(try number("max_concurrent", 64, 1...100_000)),  // checked: 1 ... 100000
                                  breakerFailures: Int(try number("breaker_failures", 5, 1...1000)),  // checked: 1 ... 1000
                                  breakerCooldownSeconds: try number("breaker_cooldown_seconds", 10, 0.1...3600), models: models)
            config.requestIDHeader = requestIDHeader
            return config
        }
    }

    package struct ConfigError: Error, CustomStringConvertible {
        package let description: String
        init(_ description: String) { self.description = description }
    }
}
