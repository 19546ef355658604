import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The browser playground: `Playground/index.html` at `/` and every other file of that folder at
/// `/playground/NAME`, built into the binary (Plugins/EmbedPlayground) so a gateway needs no files beside it and
/// the page loads nothing from elsewhere. The page calls the same HTTP API as any client.
struct Playground: Sendable {
    static let prefix = "/playground/"

    /// Read the files from this folder on every request instead (CHORUS_PLAYGROUND_DIR), to work on the page.
    let directory: String?

    func register<Context: RequestContext>(on router: Router<Context>) {
        router.get("/") { _, _ in try self.response("index.html") }
        router.get("/playground/:name") { _, context in
            try self.response(context.parameters.get("name") ?? "")
        }
    }

    /// The file's bytes with its type; 404 for a name that is not one of the playground's files.
    func response(_ name: String) throws -> Response {
        // Names are single path parts of letters, digits, '.', '-' and '_', never '..': nothing outside the
        // folder can be named, whichever source serves it.
        let allowed = name.utf8.allSatisfy { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        guard allowed, !name.isEmpty, !name.hasPrefix("."), let bytes = contents(of: name) else {
            throw OpenAIError(.notFound, "no playground file '\(name)'", type: "invalid_request_error")
        }
        var headers: HTTPFields = [.contentType: Self.type(of: name), .cacheControl: "no-cache"]
        // The page may reach only the gateway itself: no scripts, styles, fonts or calls from elsewhere.
        headers[.contentSecurityPolicy] = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' data: blob:; "
            + "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'"
        headers[.xContentTypeOptions] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func contents(of name: String) -> [UInt8]? {
        if let directory {
            return FileManager.default.contents(atPath: directory + "/" + name).map { Array($0) }
        }
        return PlaygroundFiles.base64[name].flatMap { Data(base64Encoded: $0) }.map { Array($0) }
    }

    static func type(of name: String) -> String {
        switch name.split(separator: ".").last ?? "" {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js": "text/javascript; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        default: "application/octet-stream"
        }
    }
}
