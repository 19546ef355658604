import Foundation
import GatewayHTTP
import Testing

/// The upstreams file: what it accepts, its defaults, and the line it refuses each mistake with.
@Suite struct UpstreamConfigTests {
    func load(_ json: String, environment: [String: String] = [:]) throws -> [UpstreamConfig] {
        try UpstreamConfig.load(json: Data(json.utf8), environment: environment)
    }

    func refusal(_ json: String, environment: [String: String] = [:]) -> String {
        do {
            _ = try load(json, environment: environment)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func defaultsAndTheKeyFromTheEnvironment() throws {
        let configs = try load(#"{"upstreams": [{"name": "big", "base_url": "http://10.0.0.7:8000/v1/", "api_key_env": "K", "models": {"a": {}}}]}"#,
                               environment: ["K": "secret"])
        let config = try #require(configs.first)
        #expect(config.baseURL == "http://10.0.0.7:8000/v1" && config.apiKey == "secret" && config.timeoutSeconds == 120)
        #expect(config.maxConcurrent == 64 && config.breakerFailures == 5 && config.requestIDHeader == "X-Request-Id")
        #expect(config.models == [.init(alias: "a", model: "a", capabilities: [.chat])])
    }

    @Test func theRequestIDHeaderCanBeRenamedOrTurnedOff() throws {
        let off = try load(#"{"upstreams": [{"name": "llama", "base_url": "http://h:1/v1", "request_id_header": "", "models": {"a": {}}}]}"#)
        #expect(off.first?.requestIDHeader == nil)
        let renamed = try load(#"{"upstreams": [{"name": "v", "base_url": "http://h:1/v1", "request_id_header": "X-Trace", "models": {"a": {}}}]}"#)
        #expect(renamed.first?.requestIDHeader == "X-Trace")
        #expect(refusal(#"{"upstreams": [{"name": "v", "base_url": "http://h:1/v1", "request_id_header": "a b\r\n", "models": {"a": {}}}]}"#)
                    .contains("request_id_header must be a header name"))
    }

    @Test func mistakesAreNamed() {
        #expect(refusal("[]").contains("must be a JSON object with a list \"upstreams\""))
        #expect(refusal(#"{"upstreams": [{"name": "a b", "base_url": "http://h/v1", "models": {"a": {}}}]}"#).contains("upstreams[0].name"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "ftp://h/v1", "models": {"a": {}}}]}"#).contains("base_url must be an http(s) URL"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "http://h/v1", "api_key_env": "NOPE", "models": {"a": {}}}]}"#)
                    .contains("api_key_env names NOPE, which is not set"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "http://h/v1", "timeout_seconds": -1, "models": {"a": {}}}]}"#)
                    .contains("timeout_seconds must be a number in 0.1 ... 3600"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "http://h/v1", "max_concurrent": 1e300, "models": {"a": {}}}]}"#)
                    .contains("max_concurrent must be a number in 1.0 ... 100000.0"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "http://h/v1", "models": {"a": {"capabilities": ["telepathy"]}}}]}"#)
                    .contains("capability 'telepathy'"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "http://h/v1", "models": {"x": {}}}, {"name": "b", "base_url": "http://h/v1", "models": {"x": {}}}]}"#)
                    .contains("the alias 'x' is given twice"))
        #expect(refusal(#"{"upstreams": [{"name": "a", "base_url": "http://h/v1", "models": {}}]}"#).contains("models must map at least one alias"))
    }
}
