import Foundation

/// The real weights scripts/fetch-models puts under models/ (CI runs it before the tests). A test that
/// needs them fails with a message naming the script when they are missing, never skips.
public enum RealModels {
    public static var root: URL {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("models")
    }

    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    public static func path(_ relative: String) throws -> String {
        let path = root.appendingPathComponent(relative).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw Missing(description: "models/\(relative) is missing: run scripts/fetch-models first (it downloads the default weights from PyPI)")
        }
        return path
    }
}
