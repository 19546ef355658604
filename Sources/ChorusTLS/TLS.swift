import ChorusWire
import Foundation
import NIOCore
import NIOSSL

/// TLS for the wire's listeners and clients, from PEM files: a server presents its certificate chain
/// and key; a client trusts a CA file (or the system's roots) and checks the server's name or address.
public enum TLS {
    public struct SetupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// A listener's TLS: every accepted connection does the handshake before its first frame.
    public static func server(certificateChain: String, privateKey: String) throws -> ConnectionSecurity {
        let context = try context(serverConfiguration(certificateChain: certificateChain, privateKey: privateKey))
        return ConnectionSecurity(
            name: "TLS",
            serverHandler: { NIOSSLServerHandler(context: context) },
            clientHandler: { _ in throw SetupError(description: "a server's TLS settings cannot open client connections") })
    }

    /// A client's TLS: the server's certificate must chain to `caFile` (PEM; nil: the system's roots) and
    /// name the host it is reached by (a DNS name, or an IP address in its subjectAltName).
    public static func client(trusting caFile: String?) throws -> ConnectionSecurity {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw SetupError(description: "TLS CA file '\(caFile)' cannot be read")
            }
            configuration.trustRoots = .file(caFile)
        }
        let context = try context(configuration)
        return ConnectionSecurity(
            name: "TLS",
            serverHandler: { throw SetupError(description: "a client's TLS settings cannot accept connections") },
            clientHandler: { host in
                // SNI carries names only; for an address NIOSSL checks the certificate against the peer's IP.
                let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { Int($0) != nil }
                return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
            })
    }

    /// The TLS configuration of a listener (also what the HTTP front takes).
    public static func serverConfiguration(certificateChain: String, privateKey: String) throws -> TLSConfiguration {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChain)
        } catch {
            throw SetupError(description: "TLS certificate '\(certificateChain)' cannot be read as PEM: \(error)")
        }
        guard !chain.isEmpty else { throw SetupError(description: "TLS certificate '\(certificateChain)' holds no certificate") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKey, format: .pem)
        } catch {
            throw SetupError(description: "TLS private key '\(privateKey)' cannot be read as PEM: \(error)")
        }
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
    }

    private static func context(_ configuration: TLSConfiguration) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw SetupError(description: "TLS settings refused: \(error)")
        }
    }
}
