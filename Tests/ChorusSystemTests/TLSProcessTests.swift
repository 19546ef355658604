import ChorusAPI
import ChorusTLS
import ChorusWire
import Foundation
import Testing

/// TLS on every listener, over real processes: a service with --tls-cert, the gateway calling it over TLS
/// (--service-tls-ca) and serving its own wire port and HTTPS with the same certificate.
@Suite(.serialized) struct TLSProcessTests {
    /// A self-signed certificate for localhost and 127.0.0.1, made by the openssl program.
    static func certificate() throws -> (cert: String, key: String) {
        let folder = NSTemporaryDirectory() + "chorus-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let (cert, key) = (folder + "/cert.pem", folder + "/key.pem")
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw TestFailure("openssl could not make a test certificate (scripts/install-deps installs it)") }
        return (cert, key)
    }

    static func code(_ body: () async throws -> Void) async -> StatusCode? {
        do {
            try await body()
            return .ok
        } catch {
            return WireStatus.from(error).code
        }
    }

    @Test func aServiceServesTLSAndRefusesPlainClients() async throws {
        let (cert, key) = try Self.certificate()
        let (process, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--tls-cert", cert, "--tls-key", key])
        defer { process.signal(SIGKILL) }
        #expect(process.log.contains("connections use TLS"))
        let secure = try WireClient(address: address, configuration: .init(security: try TLS.client(trusting: cert)))
        defer { secure.close() }
        #expect(try await SpeechClient(secure).echo(EchoRequest(payload: Data("hi".utf8))).payload == Data("hi".utf8))
        // A plain client's frames are not a TLS handshake: the service closes the connection.
        let plain = try WireClient(address: address, configuration: .init(connectTimeout: .seconds(2)))
        defer { plain.close() }
        await #expect(Self.code { _ = try await SpeechClient(plain).echo(EchoRequest(), options: CallOptions(timeout: .seconds(5))) } != .ok)
        // A client that trusts another CA refuses the service's certificate.
        let other = try Self.certificate()
        let distrustful = try WireClient(address: address, configuration: .init(security: try TLS.client(trusting: other.cert)))
        defer { distrustful.close() }
        await #expect(Self.code { _ = try await SpeechClient(distrustful).echo(EchoRequest(), options: CallOptions(timeout: .seconds(5))) } != .ok)
        // The service still serves its TLS clients after refusing the others.
        #expect(try await SpeechClient(secure).echo(EchoRequest()).servedBy.hasPrefix(address))
    }

    @Test func theGatewayCallsServicesOverTLSAndServesHTTPS() async throws {
        let (cert, key) = try Self.certificate()
        let (service, serviceAddress) = try await ChorusProcess.serve(["speech", "--port", "0", "--tls-cert", cert, "--tls-key", key])
        let httpPort = try freePort()
        let (gateway, gatewayAddress) = try await ChorusProcess.serve([
            "gateway", "--port", "0", "--speech", serviceAddress, "--service-tls-ca", cert, "--tls-cert", cert, "--tls-key", key,
            "--http-port", "\(httpPort)", "--http-tls-cert", cert, "--http-tls-key", key])
        defer { [service, gateway].forEach { $0.signal(SIGKILL) } }
        _ = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on https://")
        let client = try WireClient(address: gatewayAddress, configuration: .init(security: try TLS.client(trusting: cert)))
        defer { client.close() }
        let answer = try await SpeechClient(client).echo(EchoRequest(payload: Data("through".utf8)))
        #expect(answer.payload == Data("through".utf8) && answer.servedBy.hasPrefix(serviceAddress))
        // HTTPS through the official command-line client, checking the certificate against the CA.
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        curl.arguments = ["curl", "-sS", "--max-time", "10", "--cacert", cert, "-H", "Content-Type: application/json",
                          "-d", #"{"service": "speech", "payload": "aGk="}"#, "https://127.0.0.1:\(httpPort)/v1/echo"]
        let output = Pipe()
        curl.standardOutput = output
        curl.standardError = output
        try curl.run()
        let body = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        curl.waitUntilExit()
        #expect(curl.terminationStatus == 0 && body.contains("aGk="), "\(body)")
    }

    @Test func badTLSFilesStopTheProcessNamingThem() async throws {
        let (status, output) = try await ChorusProcess.run(["speech", "--port", "0", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"])
        #expect(status != 0 && output.contains("/nonexistent/cert.pem"), "\(output)")
        let (halfStatus, halfOutput) = try await ChorusProcess.run(["speech", "--port", "0", "--tls-cert", "/nonexistent/cert.pem"])
        #expect(halfStatus != 0 && halfOutput.contains("--tls-cert and --tls-key together"), "\(halfOutput)")
    }
}
